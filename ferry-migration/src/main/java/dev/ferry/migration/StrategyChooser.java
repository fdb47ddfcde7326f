package dev.ferry.migration;

/**
 * {@code --strategy auto}: predicts the frozen window of each strategy from the pod's memory
 * and picks one that keeps the freeze budget. Post-copy is only chosen where the user allowed
 * it (a source failure during post-copy loses the pod) and the target has userfaultfd. A
 * budget no strategy can keep is never missed silently: the choice says so, and the policy
 * decides between going ahead and refusing.
 */
public final class StrategyChooser {
  // Fitted to this machine kind's measurements (bench/results/cold-migration.json and demo
  // runs, by resident memory: 17 MB -> ~720 ms, ~100 MB -> ~1020 ms, ~1.4 GB -> ~4030 ms):
  // CRIU writes images at ~1.3 GB/s, the lab link carries ~1 GB/s, CRIU restores ~1.3 GB/s.
  private static final double DUMP_BYTES_PER_MS = 1.3e6;
  private static final double TRANSFER_BYTES_PER_MS = 1.0e6;
  private static final double RESTORE_BYTES_PER_MS = 1.3e6;
  /** Fixed cost of a cold migration's frozen window (CRIU and runc start-up, network hand-over). */
  private static final long COLD_FIXED_MS = 650;
  /** Post-copy's frozen window: lazy dump and restore without pages, ~0.1 ms per MB of page tables. */
  private static final long POSTCOPY_FIXED_MS = 650;
  private static final double POSTCOPY_BYTES_PER_MS = 10e6;

  private StrategyChooser() {}

  /**
   * The outcome of a choice.
   *
   * @param strategy "cold" or "postcopy"
   * @param predictedFrozenMs predicted frozen window of that strategy
   * @param reason why, in words, for the report
   * @param budgetMet whether the prediction fits the budget (true when there is none)
   */
  public record Choice(String strategy, long predictedFrozenMs, String reason, boolean budgetMet) {}

  public static long predictColdMs(long memoryBytes) {
    return COLD_FIXED_MS + Math.round(memoryBytes / DUMP_BYTES_PER_MS + memoryBytes / TRANSFER_BYTES_PER_MS
        + memoryBytes / RESTORE_BYTES_PER_MS);
  }

  /** Pre-copy: the final dump still writes all memory; only what changed since the last round crosses. */
  private static final double RECIPE_BYTES_PER_MS = 3e6;
  private static final double REBUILD_BYTES_PER_MS = 3e6;

  /**
   * Pre-copy's frozen window for a pod holding {@code memoryBytes} of which {@code leftBytes}
   * changed since the last round: dump everything, compare, send what changed, rebuild, restore.
   */
  public static long predictPrecopyMs(long memoryBytes, long leftBytes) {
    return COLD_FIXED_MS + Math.round(memoryBytes / DUMP_BYTES_PER_MS + memoryBytes / RECIPE_BYTES_PER_MS
        + leftBytes / TRANSFER_BYTES_PER_MS + memoryBytes / REBUILD_BYTES_PER_MS + memoryBytes / RESTORE_BYTES_PER_MS);
  }

  public static long predictPostcopyMs(long memoryBytes) {
    return POSTCOPY_FIXED_MS + Math.round(memoryBytes / POSTCOPY_BYTES_PER_MS);
  }

  /**
   * Chooses for a pod holding {@code memoryBytes}.
   *
   * @throws IllegalStateException when no allowed strategy keeps the budget and the policy is
   *     "abort"; nothing has been touched then
   */
  public static Choice choose(long memoryBytes, long maxFreezeMs, boolean allowPostcopy, boolean targetHasUffd,
      String onBudgetMiss) {
    long cold = predictColdMs(memoryBytes);
    long post = predictPostcopyMs(memoryBytes);
    String mem = String.format("%.0f MiB", memoryBytes / 1048576.0);
    if (maxFreezeMs <= 0) {
      return new Choice("cold", cold, "no freeze budget given: cold (predicted " + cold + " ms for " + mem + ")", true);
    }
    if (cold <= maxFreezeMs) {
      return new Choice("cold", cold, "cold is predicted at " + cold + " ms for " + mem + ", within the " + maxFreezeMs
          + " ms budget", true);
    }
    boolean postcopyPossible = allowPostcopy && targetHasUffd;
    if (postcopyPossible && post <= maxFreezeMs) {
      return new Choice("postcopy", post, "cold is predicted at " + cold + " ms for " + mem + ", over the " + maxFreezeMs
          + " ms budget; post-copy at " + post + " ms fits it (allowed with --allow-postcopy)", true);
    }
    String why = "no allowed strategy keeps the " + maxFreezeMs + " ms freeze budget for " + mem + ": cold is predicted at "
        + cold + " ms, post-copy at " + post + " ms"
        + (!allowPostcopy ? " (not allowed: add --allow-postcopy)" : !targetHasUffd ? " (target lacks userfaultfd)" : "");
    if ("abort".equals(onBudgetMiss)) {
      throw new IllegalStateException(why + "; refused (--on-budget-miss abort). Raise --max-freeze or allow post-copy.");
    }
    String pick = postcopyPossible && post < cold ? "postcopy" : "cold";
    return new Choice(pick, "postcopy".equals(pick) ? post : cold, why + "; going ahead with " + pick
        + " (--on-budget-miss proceed)", false);
  }
}
