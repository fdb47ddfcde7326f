package dev.ferry.migration;

import java.util.List;

/**
 * What the user asked of one migration.
 *
 * @param pod pod to move
 * @param targetHost where to
 * @param strategy only "cold" (stop and copy) for now
 * @param faults faults to inject (tests): "corrupt-image-in-transit", "target-agent-crash-in-transfer"
 * @param bandwidthMBps cap on the transfer rate in MB/s (10^6 bytes), 0 for none
 */
public record MigrationOptions(String pod, String targetHost, String strategy, List<String> faults, long bandwidthMBps) {
  public MigrationOptions(String pod, String targetHost, String strategy, List<String> faults) {
    this(pod, targetHost, strategy, faults, 0);
  }

  public MigrationOptions {
    if (bandwidthMBps < 0 || bandwidthMBps > 1_000_000) {
      throw new IllegalArgumentException("bandwidth " + bandwidthMBps + " MB/s is out of range (0 = no cap .. 1000000)");
    }
    faults = faults == null ? List.of() : List.copyOf(faults);
    strategy = strategy == null ? "cold" : strategy;
  }
}
