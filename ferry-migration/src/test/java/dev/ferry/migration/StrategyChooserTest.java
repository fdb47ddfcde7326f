package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class StrategyChooserTest {
  private static final long MIB = 1 << 20;

  @Test
  void smallPodsGoColdWithinTheBudget() {
    var c = StrategyChooser.choose(64 * MIB, 1000, true, true, "proceed");
    assertThat(c.strategy()).isEqualTo("cold");
    assertThat(c.budgetMet()).isTrue();
    assertThat(c.predictedFrozenMs()).isLessThanOrEqualTo(1000);
  }

  @Test
  void withoutABudgetBigPodsGoPrecopyAndSmallOnesCold() {
    assertThat(StrategyChooser.choose(1024 * MIB, 0, false, true, "proceed").strategy()).isEqualTo("precopy");
    assertThat(StrategyChooser.choose(8 * MIB, 0, false, true, "proceed").strategy()).isEqualTo("cold");
  }

  @Test
  void aBudgetPrecopyKeepsIsKeptWithoutPostcopy() {
    var c = StrategyChooser.choose(1024 * MIB, 1200, false, true, "proceed");
    assertThat(c.strategy()).isEqualTo("precopy");
    assertThat(c.budgetMet()).isTrue();
  }

  @Test
  void tightBudgetsGoHybridOnlyWhenAllowedAndPossible() {
    assertThat(StrategyChooser.choose(1024 * MIB, 500, true, true, "proceed").strategy()).isEqualTo("hybrid");
    var notAllowed = StrategyChooser.choose(1024 * MIB, 500, false, true, "proceed");
    assertThat(notAllowed.strategy()).isEqualTo("precopy");
    assertThat(notAllowed.budgetMet()).isFalse();
    assertThat(notAllowed.reason()).contains("--allow-postcopy").contains("going ahead with precopy");
    assertThat(StrategyChooser.choose(1024 * MIB, 500, true, false, "proceed").reason()).contains("lacks userfaultfd");
  }

  @Test
  void theThrottlePolicyStillGoesAheadWhenNoStrategyKeepsTheBudget() {
    var c = StrategyChooser.choose(1024 * MIB, 100, true, true, "throttle");
    assertThat(c.budgetMet()).isFalse();
    assertThat(c.reason()).contains("going ahead with hybrid");
  }

  @Test
  void aBudgetNothingKeepsIsRefusedUnderTheAbortPolicy() {
    assertThatThrownBy(() -> StrategyChooser.choose(1024 * MIB, 100, true, true, "abort"))
        .hasMessageContaining("no allowed strategy keeps the 100 ms freeze budget").hasMessageContaining("refused");
  }

  @Test
  void predictionsGrowWithMemoryForColdAndBarelyForPostcopy() {
    long cold256 = StrategyChooser.predictColdMs(256 * MIB, true);
    long cold1g = StrategyChooser.predictColdMs(1024 * MIB, true);
    long post256 = StrategyChooser.predictPostcopyMs(256 * MIB);
    long post1g = StrategyChooser.predictPostcopyMs(1024 * MIB);
    assertThat(cold1g).isGreaterThan(3 * cold256 / 2);
    assertThat(post1g).isLessThan(2 * post256);
  }
}
