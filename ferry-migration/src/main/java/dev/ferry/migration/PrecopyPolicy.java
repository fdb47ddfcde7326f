package dev.ferry.migration;

/**
 * When to stop memory pre-copy rounds and freeze. Round 1 ships everything; later rounds ship
 * what changed meanwhile. Stop once what is left is small, once it fits the freeze budget, when
 * it no longer shrinks (the pod dirties memory as fast as we copy it), or at the round limit.
 */
final class PrecopyPolicy {
  static final int MAX_ROUNDS = 8;
  /** Below this many changed bytes per round, another round gains nothing measurable. */
  static final long SMALL_BYTES = 4L << 20;
  /** A round that does not shrink the changed set below this share of the previous one is not converging. */
  static final double SHRINK = 0.8;

  private final long memoryBytes;
  private final long maxFreezeMs;
  private long previousChanged = -1;

  /**
   * The decision after a round, and the frozen window predicted if the pod froze now.
   *
   * @param overBudget stopping now would miss the freeze budget
   */
  record Decision(boolean stop, long predictedFrozenMs, String reason, boolean overBudget) {
    Decision(boolean stop, long predictedFrozenMs, String reason) {
      this(stop, predictedFrozenMs, reason, false);
    }
  }

  private final boolean pumped;
  private final boolean hybrid;

  /**
   * @param pumped frozen memory goes through the page pump (userfaultfd on the target)
   * @param hybrid the rounds precede a post-copy: the frozen window does not depend on what is
   *     left (it follows the restored pod), only the time the pod depends on its source does
   */
  PrecopyPolicy(long memoryBytes, long maxFreezeMs, boolean pumped, boolean hybrid) {
    this.memoryBytes = memoryBytes;
    this.maxFreezeMs = maxFreezeMs;
    this.pumped = pumped;
    this.hybrid = hybrid;
  }

  /** Starts measuring convergence afresh (after the pod was throttled). */
  void restart() {
    previousChanged = -1;
  }

  Decision afterRound(int round, long changedBytes, double sendBytesPerSecond, double dirtyBytesPerSecond) {
    long left = round == 1 ? memoryBytes : changedBytes;
    long predicted = hybrid ? StrategyChooser.predictPostcopyMs(memoryBytes)
        : pumped ? StrategyChooser.predictPumpedPrecopyMs(memoryBytes, left)
        : StrategyChooser.predictPrecopyMs(memoryBytes, left);
    long prev = previousChanged;
    previousChanged = changedBytes;
    String mib = String.format("%.1f MiB", left / 1048576.0);
    if (round == 1) {
      return new Decision(false, predicted, "first round sent everything; measuring what changes");
    }
    boolean over = maxFreezeMs > 0 && predicted > maxFreezeMs;
    String budget = over ? "; predicted " + predicted + " ms misses the " + maxFreezeMs + " ms budget" : "";
    if (changedBytes <= Math.max(SMALL_BYTES, memoryBytes / 100)) {
      return new Decision(true, predicted, "converged: " + mib + " changed in round " + round + budget, over);
    }
    if (!hybrid && maxFreezeMs > 0 && predicted <= maxFreezeMs) {
      return new Decision(true, predicted, "fits the budget: " + mib + " left, predicted " + predicted + " ms <= "
          + maxFreezeMs + " ms");
    }
    if (prev >= 0 && changedBytes > SHRINK * prev) {
      return new Decision(true, predicted, "stopped shrinking: " + mib + " changed in round " + round + " after "
          + String.format("%.1f MiB", prev / 1048576.0) + " (dirty rate " + String.format("%.1f MB/s", dirtyBytesPerSecond / 1e6)
          + " against " + String.format("%.0f MB/s", sendBytesPerSecond / 1e6) + " sent)" + budget, over);
    }
    if (round >= MAX_ROUNDS) {
      return new Decision(true, predicted, "round limit " + MAX_ROUNDS + " reached with " + mib + " left" + budget, over);
    }
    return new Decision(false, predicted, mib + " changed; another round");
  }
}
