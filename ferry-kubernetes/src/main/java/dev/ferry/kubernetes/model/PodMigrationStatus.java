package dev.ferry.kubernetes.model;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/** Where a migration is, written by the controller before each step it takes. */
public class PodMigrationStatus {
  @JsonPropertyDescription("Pending, Preparing, Precopy, Dumping, Transferring, Restoring, Cutover, Postcopy, Cleanup,"
      + " Succeeded, RollingBack, RolledBack or Failed")
  public String phase;

  @JsonPropertyDescription("the Ferry migration id, as in the agents' logs")
  public String migrationId;

  public String sourceNode;
  public String targetNode;

  @JsonPropertyDescription("the Pod on the target node the pod is restored into (label ferry.dev/placeholder-for: the"
      + " source's uid); after success it is the pod")
  public String placeholder;

  @JsonPropertyDescription("the annotation that asks the IPAM for the source's IP on the placeholder; empty when the pod"
      + " gets a new IP (Services follow its labels, clients reconnect)")
  public String podIpAnnotation;

  @JsonPropertyDescription("the strategy in use (auto's choice once made)")
  public String strategy;

  @JsonPropertyDescription("the MigrationPolicy whose defaults apply, if any")
  public String policy;

  public Progress progress;

  @JsonPropertyDescription("how long the pod was frozen, ms")
  public Long frozenMs;

  @JsonPropertyDescription("longest gap the pod's clients could see, ms")
  public Long downtimeMs;

  public String startedAt;
  public String finishedAt;

  @JsonPropertyDescription("why it failed or was rolled back, naming phase, node and cause")
  public String failureReason;

  public Long observedGeneration;

  public List<Condition> conditions = new ArrayList<>();

  /** Live progress of the transfer. */
  public static class Progress {
    public Integer round;
    public Long bytes;
    public Long bytesPerSecond;
    public Long dirtyBytesPerSecond;
    public Long predictedFreezeMs;
  }

  /** Whether {@link #phase} is one a migration ends in. */
  public boolean ended() {
    return "Succeeded".equals(phase) || "RolledBack".equals(phase) || "Failed".equals(phase);
  }
}
