package dev.ferry.kubernetes.model;

import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * Defaults for the migrations of the pods it selects by labels (like KubeVirt's
 * MigrationPolicy): a PodMigration's own fields win; among policies that match, the one whose
 * selector names the most labels wins, then the name.
 */
@Group(Api.GROUP)
@Version(Api.VERSION)
public class MigrationPolicy extends CustomResource<MigrationPolicySpec, MigrationPolicyStatus> {}
