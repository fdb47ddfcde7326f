package dev.ferry.kubernetes.model;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * Moves every migratable pod off a node (a failing host, a rack to decommission), at most
 * {@code maxParallel} at a time, each by a {@link PodMigration} it owns.
 */
@Group(Api.GROUP)
@Version(Api.VERSION)
@ShortNames("nd")
@AdditionalPrinterColumn(name = "Node", jsonPath = ".spec.nodeName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Migrated", jsonPath = ".status.migrated", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Remaining", jsonPath = ".status.remaining", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class NodeDrain extends CustomResource<NodeDrainSpec, NodeDrainStatus> {}
