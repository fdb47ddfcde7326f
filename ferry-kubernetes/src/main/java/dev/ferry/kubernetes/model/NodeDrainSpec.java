package dev.ferry.kubernetes.model;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import java.util.Map;

/** Which node to empty, how many pods at once, and what to do with pods that cannot move. */
public class NodeDrainSpec {
  @Required
  @JsonPropertyDescription("the node to move every pod off")
  public String nodeName;

  @Min(1)
  @Max(64)
  @JsonPropertyDescription("how many migrations run at once (default 1)")
  public Integer maxParallel;

  @Pattern("^(skip|evict|block)$")
  @JsonPropertyDescription("pods Ferry cannot migrate: skip them (default), evict them as kubectl drain would, or block"
      + " the drain")
  public String unmigratable;

  @JsonPropertyDescription("only pods with these labels (default: every pod on the node)")
  public Map<String, String> podSelector;

  @JsonPropertyDescription("labels the target nodes must have")
  public Map<String, String> nodeSelector;
}
