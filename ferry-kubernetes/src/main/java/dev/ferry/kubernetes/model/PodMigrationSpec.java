package dev.ferry.kubernetes.model;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import java.util.Map;

/** What to move where, and how; unset fields come from the selected {@link MigrationPolicy}. */
public class PodMigrationSpec {
  @Required
  @Pattern("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
  @JsonPropertyDescription("name of the pod to move, in this PodMigration's namespace")
  public String podName;

  @JsonPropertyDescription("node to move the pod to; or leave it empty and give nodeSelector")
  public String targetNode;

  @JsonPropertyDescription("labels the target node must have, when targetNode is empty")
  public Map<String, String> nodeSelector;

  @Pattern("^(auto|cold|precopy|postcopy|hybrid)$")
  @JsonPropertyDescription("auto (default: chosen from memory, dirty rate, bandwidth and maxFreezeMs), cold, precopy,"
      + " postcopy or hybrid")
  public String strategy;

  @Min(0)
  @Max(3600000)
  @JsonPropertyDescription("freeze budget in ms for auto; 0 for none")
  public Long maxFreezeMs;

  @Min(0)
  @Max(1000000)
  @JsonPropertyDescription("cap on this migration's transfer rate in MB/s; 0 for none")
  public Long bandwidthMBps;

  @JsonPropertyDescription("let auto choose post-copy (the pod is lost if the source fails before all its pages arrived)")
  public Boolean allowPostcopy;

  @JsonPropertyDescription("hooks called before anything is frozen (pre) and after the commit (post)")
  public Hooks hooks;

  @JsonPropertyDescription("set to true to stop the migration before its commit point: the source keeps running")
  public boolean cancel;

  /** Admission and notification hooks (webhook URLs). */
  public static class Hooks {
    @JsonPropertyDescription("URL POSTed the pod's identity before anything is frozen; a non-2xx answer stops the migration")
    public String pre;

    @JsonPropertyDescription("URL POSTed once the pod runs on the target with its identity")
    public String post;

    @Min(1)
    @Max(600000)
    @JsonPropertyDescription("how long a hook may take, ms (default 10000)")
    public Long timeoutMs;
  }
}
