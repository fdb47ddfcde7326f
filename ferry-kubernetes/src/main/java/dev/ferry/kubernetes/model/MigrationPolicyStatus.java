package dev.ferry.kubernetes.model;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;

/** What the controller last did with a policy. */
public class MigrationPolicyStatus {
  @JsonPropertyDescription("the last PodMigration whose defaults came from this policy (namespace/name)")
  public String lastAppliedTo;
}
