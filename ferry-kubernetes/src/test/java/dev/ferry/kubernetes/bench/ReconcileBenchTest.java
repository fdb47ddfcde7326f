package dev.ferry.kubernetes.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The reconcile benchmark in small: every PodMigration reaches Succeeded, each reconciled at least twice (plan, start). */
class ReconcileBenchTest {
  @Test
  void fiftyPodMigrationsAllReachSucceededUnderTheRealReconciler() throws Exception {
    ReconcileBench.Run r = Quiet.logs(() -> ReconcileBench.run(50, 4, Duration.ofSeconds(60)));
    assertThat(r.succeeded()).isEqualTo(50);
    assertThat(r.reconciles()).isGreaterThanOrEqualTo(100);
    assertThat(r.wallMs()).isPositive();
    assertThat(r.heapAfterBytes()).isPositive();
  }
}
