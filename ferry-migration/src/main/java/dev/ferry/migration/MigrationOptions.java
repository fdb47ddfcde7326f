package dev.ferry.migration;

import java.util.List;

/**
 * What the user asked of one migration.
 *
 * @param pod pod to move
 * @param targetHost where to
 * @param strategy only "cold" (stop and copy) for now
 * @param faults faults to inject (tests): "corrupt-image-in-transit", "target-agent-crash-in-transfer"
 */
public record MigrationOptions(String pod, String targetHost, String strategy, List<String> faults) {
  public MigrationOptions {
    faults = faults == null ? List.of() : List.copyOf(faults);
    strategy = strategy == null ? "cold" : strategy;
  }
}
