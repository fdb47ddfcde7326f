package dev.ferry.migration;

/**
 * {@code --strategy auto}: predicts the frozen window of each strategy from the pod's memory
 * and picks one that keeps the freeze budget. Post-copy is only chosen where the user allowed
 * it (a source failure during post-copy loses the pod) and the target has userfaultfd. A
 * budget no strategy can keep is never missed silently: the choice says so, and the policy
 * decides between going ahead and refusing.
 */
public final class StrategyChooser {
  // Fitted to this machine kind's measurements (bench/results/migration-strategies.json, medians
  // by resident memory, 2026-11-28: cold frozen 0.79 s at 0.39 GB and 1.70 s at 1.47 GB, the
  // restore lazy from local images). The dump streams into the transfer, so the two overlap:
  // together ~1.2 GB/s. An eager restore fills memory at ~1.3 GB/s.
  private static final double COLD_STREAM_BYTES_PER_MS = 1.2e6;
  /** CRIU writing images to disk (pre-copy without userfaultfd dumps everything, then compares). */
  private static final double DUMP_BYTES_PER_MS = 1.45e6;
  /** The lab link. */
  private static final double TRANSFER_BYTES_PER_MS = 1.35e6;
  private static final double RESTORE_BYTES_PER_MS = 1.3e6;
  /** Fixed cost of a cold migration's frozen window (runc and CRIU start-up, images, identity, commit). */
  private static final long COLD_FIXED_MS = 465;
  /**
   * Post-copy's frozen window: lazy dump and restore without pages (0.35-0.38 s from 0.4 to 1.5 GB),
   * ~0.025 ms per MB for the page tables CRIU walks and the pages it pins for its page server.
   */
  private static final long POSTCOPY_FIXED_MS = 340;
  private static final double POSTCOPY_BYTES_PER_MS = 40e6;

  private StrategyChooser() {}

  /**
   * The outcome of a choice.
   *
   * @param strategy "cold", "precopy" or "hybrid"
   * @param predictedFrozenMs predicted frozen window of that strategy
   * @param reason why, in words, for the report
   * @param budgetMet whether the prediction fits the budget (true when there is none)
   */
  public record Choice(String strategy, long predictedFrozenMs, String reason, boolean budgetMet) {}

  /** @param lazyRestore the target restores lazily from its images: filling memory is not frozen time */
  public static long predictColdMs(long memoryBytes, boolean lazyRestore) {
    return COLD_FIXED_MS + Math.round(memoryBytes / COLD_STREAM_BYTES_PER_MS
        + (lazyRestore ? 0 : memoryBytes / RESTORE_BYTES_PER_MS));
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
   * Pre-copy through the page pump (userfaultfd on the target): a lazy dump (no pages), then
   * the pump reads the frozen memory (~3.1 GB/s: frozen 0.54 s at 0.39 GB, 0.90 s at 1.47 GB in
   * all) and sends what changed; the restore is lazy from the target's copy.
   */
  private static final double PUMP_BYTES_PER_MS = 3.1e6;
  /** Lazy dump, images, pump set-up and lazy restore. */
  private static final long PUMPED_PRECOPY_FIXED_MS = 405;

  public static long predictPumpedPrecopyMs(long memoryBytes, long leftBytes) {
    return PUMPED_PRECOPY_FIXED_MS + Math.round(memoryBytes / PUMP_BYTES_PER_MS + leftBytes / TRANSFER_BYTES_PER_MS);
  }

  /**
   * Chooses for a pod holding {@code memoryBytes}: the safest strategy whose predicted frozen
   * window keeps the budget (cold, then pre-copy, then hybrid, which is post-copy after
   * pre-copy rounds and needs --allow-postcopy); without a budget, pre-copy where it is
   * predicted to freeze the pod at least 20% less than cold, else cold.
   *
   * @param lazyTarget the target has userfaultfd and the pod one app container (post-copy and
   *     the page pump possible)
   * @throws IllegalStateException when no allowed strategy keeps the budget and the policy is
   *     "abort"; nothing has been touched then
   */
  public static Choice choose(long memoryBytes, long maxFreezeMs, boolean allowPostcopy, boolean lazyTarget,
      String onBudgetMiss) {
    long cold = predictColdMs(memoryBytes, lazyTarget);
    long pre = lazyTarget ? predictPumpedPrecopyMs(memoryBytes, memoryBytes / 50)
        : predictPrecopyMs(memoryBytes, memoryBytes / 50);
    long hybrid = predictPostcopyMs(memoryBytes);
    String mem = String.format("%.0f MiB", memoryBytes / 1048576.0);
    String predictions = "cold " + cold + " ms, pre-copy " + pre + " ms, hybrid " + hybrid + " ms for " + mem;
    if (maxFreezeMs <= 0) {
      // rounds cost the pod CPU and the link bandwidth: only worth it for a clear gain
      return pre < 0.8 * cold
          ? new Choice("precopy", pre, "no freeze budget given: pre-copy freezes the pod least without risking it ("
              + predictions + ")", true)
          : new Choice("cold", cold, "no freeze budget given: cold, since pre-copy would not freeze the pod clearly"
              + " less (under 80% of cold) for the CPU and bandwidth its rounds cost (" + predictions + ")", true);
    }
    if (cold <= maxFreezeMs) {
      return new Choice("cold", cold, "cold keeps the " + maxFreezeMs + " ms budget (" + predictions + ")", true);
    }
    if (pre <= maxFreezeMs) {
      return new Choice("precopy", pre, "pre-copy keeps the " + maxFreezeMs + " ms budget, cold would not ("
          + predictions + ")", true);
    }
    boolean hybridPossible = allowPostcopy && lazyTarget;
    if (hybridPossible && hybrid <= maxFreezeMs) {
      return new Choice("hybrid", hybrid, "only hybrid keeps the " + maxFreezeMs + " ms budget (" + predictions
          + "); allowed by --allow-postcopy: the pod depends on its source until its last changed page arrived", true);
    }
    String why = "no allowed strategy keeps the " + maxFreezeMs + " ms freeze budget (" + predictions + ")"
        + (!allowPostcopy ? "; hybrid and post-copy not allowed: add --allow-postcopy"
            : !lazyTarget ? "; hybrid impossible: target lacks userfaultfd or the pod has several containers" : "");
    if ("abort".equals(onBudgetMiss)) {
      throw new IllegalStateException(why + "; refused (--on-budget-miss abort). Raise --max-freeze"
          + (allowPostcopy ? "." : " or allow post-copy."));
    }
    String pick = hybridPossible && hybrid < pre ? "hybrid" : pre < cold ? "precopy" : "cold";
    long predicted = switch (pick) {
      case "hybrid" -> hybrid;
      case "precopy" -> pre;
      default -> cold;
    };
    return new Choice(pick, predicted, why + "; going ahead with " + pick + ", the lowest prediction (--on-budget-miss "
        + onBudgetMiss + ")", false);
  }
}
