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
 * @param maxFreezeMs freeze budget for --strategy auto, 0 for none
 * @param allowPostcopy whether auto may choose post-copy (the pod is at risk until its pages arrived)
 * @param onBudgetMiss what happens when the freeze budget cannot be kept: "proceed" (say so and go ahead),
 *     "throttle" (pre-copy: cap the pod's CPU so that its writes slow down and the rounds converge,
 *     then go ahead), or "abort" (refuse before anything is frozen)
 * @param runtime the runtime the caller expects the pod to run on ("runc", "runsc"), or null for
 *     whatever it runs on; a mismatch is refused (migrating between runtimes is not possible)
 */
public record MigrationOptions(String pod, String targetHost, String strategy, List<String> faults, long bandwidthMBps,
    long maxFreezeMs, boolean allowPostcopy, String onBudgetMiss, String runtime) {
  public MigrationOptions(String pod, String targetHost, String strategy, List<String> faults, long bandwidthMBps,
      long maxFreezeMs, boolean allowPostcopy, String onBudgetMiss) {
    this(pod, targetHost, strategy, faults, bandwidthMBps, maxFreezeMs, allowPostcopy, onBudgetMiss, null);
  }

  /** The same options, expecting the pod on {@code r}. */
  public MigrationOptions withRuntime(String r) {
    return new MigrationOptions(pod, targetHost, strategy, faults, bandwidthMBps, maxFreezeMs, allowPostcopy, onBudgetMiss, r);
  }

  public MigrationOptions(String pod, String targetHost, String strategy, List<String> faults) {
    this(pod, targetHost, strategy, faults, 0);
  }

  public MigrationOptions(String pod, String targetHost, String strategy, List<String> faults, long bandwidthMBps) {
    this(pod, targetHost, strategy, faults, bandwidthMBps, 0, false, "proceed");
  }

  /** The same options with a concrete strategy (what auto chose). */
  public MigrationOptions withStrategy(String s) {
    return new MigrationOptions(pod, targetHost, s, faults, bandwidthMBps, maxFreezeMs, allowPostcopy, onBudgetMiss,
        runtime);
  }

  public MigrationOptions {
    if (bandwidthMBps < 0 || bandwidthMBps > 1_000_000) {
      throw new IllegalArgumentException("bandwidth " + bandwidthMBps + " MB/s is out of range (0 = no cap .. 1000000)");
    }
    faults = faults == null ? List.of() : List.copyOf(faults);
    strategy = strategy == null ? "cold" : strategy;
    onBudgetMiss = onBudgetMiss == null ? "proceed" : onBudgetMiss;
    if (!List.of("proceed", "abort", "throttle").contains(onBudgetMiss)) {
      throw new IllegalArgumentException("--on-budget-miss must be 'proceed', 'throttle' or 'abort', not '"
          + onBudgetMiss + "'");
    }
    if (maxFreezeMs < 0 || maxFreezeMs > 3_600_000) {
      throw new IllegalArgumentException("--max-freeze " + maxFreezeMs + " ms is out of range (0 = none .. 3600000)");
    }
  }
}
