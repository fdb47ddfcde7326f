package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class PrecopyPolicyTest {
  private static final long MIB = 1 << 20;

  @Test
  void roundOneNeverStopsAndASmallChangedSetConverges() {
    PrecopyPolicy p = new PrecopyPolicy(1024 * MIB, 0, true, false);
    assertThat(p.afterRound(1, 1024 * MIB, 500e6, 0).stop()).isFalse();
    PrecopyPolicy.Decision d = p.afterRound(2, 3 * MIB, 500e6, 10e6);
    assertThat(d.stop()).isTrue();
    assertThat(d.reason()).startsWith("converged");
    assertThat(d.overBudget()).isFalse();
  }

  @Test
  void aChangedSetThatStopsShrinkingStopsTheRounds() {
    PrecopyPolicy p = new PrecopyPolicy(1024 * MIB, 0, true, false);
    p.afterRound(1, 1024 * MIB, 500e6, 0);
    assertThat(p.afterRound(2, 100 * MIB, 100e6, 50e6).stop()).isFalse();
    PrecopyPolicy.Decision d = p.afterRound(3, 95 * MIB, 100e6, 50e6);
    assertThat(d.stop()).isTrue();
    assertThat(d.reason()).startsWith("stopped shrinking");
  }

  @Test
  void theRoundLimitEndsAShrinkingButLargeChangedSet() {
    PrecopyPolicy p = new PrecopyPolicy(4096 * MIB, 0, true, false);
    long changed = 4096 * MIB;
    PrecopyPolicy.Decision d = null;
    for (int round = 1; round <= PrecopyPolicy.MAX_ROUNDS; round++) {
      d = p.afterRound(round, changed, 100e6, 10e6);
      changed = changed * 7 / 10;
    }
    assertThat(d.stop()).isTrue();
    assertThat(d.reason()).startsWith("round limit");
  }

  @Test
  void aBudgetThePredictionMissesIsFlaggedAndOneItKeepsStopsEarly() {
    PrecopyPolicy tight = new PrecopyPolicy(1024 * MIB, 300, true, false);
    tight.afterRound(1, 1024 * MIB, 500e6, 0);
    PrecopyPolicy.Decision miss = tight.afterRound(2, 2 * MIB, 500e6, 1e6);
    assertThat(miss.stop()).isTrue();
    assertThat(miss.overBudget()).isTrue();
    assertThat(miss.reason()).contains("misses the 300 ms budget");

    PrecopyPolicy roomy = new PrecopyPolicy(256 * MIB, 60_000, true, false);
    roomy.afterRound(1, 256 * MIB, 500e6, 0);
    PrecopyPolicy.Decision fits = roomy.afterRound(2, 100 * MIB, 100e6, 50e6);
    assertThat(fits.stop()).isTrue();
    assertThat(fits.reason()).startsWith("fits the budget");
  }

  @Test
  void hybridRoundsPredictThePostcopyFreezeWhateverIsLeft() {
    PrecopyPolicy p = new PrecopyPolicy(1024 * MIB, 2000, true, true);
    p.afterRound(1, 1024 * MIB, 500e6, 0);
    PrecopyPolicy.Decision d = p.afterRound(2, 200 * MIB, 100e6, 50e6);
    assertThat(d.predictedFrozenMs()).isEqualTo(StrategyChooser.predictPostcopyMs(1024 * MIB));
    assertThat(d.overBudget()).isFalse();
  }
}
