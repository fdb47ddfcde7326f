package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.lab.Lab;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Pre-copy (memory copied in rounds while the pod runs, without kernel dirty tracking) and
 * hybrid (rounds, then post-copy of what changed) with Redis under a steady write load: every
 * acknowledged write kept, the same IP and UID, the client's one connection kept; and failures
 * in their phases roll back to a running source with its data and its client's connection.
 */
class LiveMigrationIT {
  private static void assumeUffd() {
    TestLab.assumeUserfaultfd("hybrid, and pre-copy through the page pump, are");
  }

  @Test
  void precopyShipsMemoryInRoundsAndOnlyWhatChangedWhileFrozen() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("precopy").dataMiB(64)
        .afterMigration((l, c, rep) -> assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-b"))
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    assertThat(r.strategy).isEqualTo("precopy");
    TestLab.assertInvariants(r);
    assertThat(r.precopyRounds).isGreaterThanOrEqualTo(2);
    assertThat(r.precopyRoundBytes).hasSize(r.precopyRounds);
    // round 1 carries the 64 MiB, later rounds only what the client changed meanwhile
    assertThat(r.precopyRoundBytes.get(0)).isGreaterThan(64L << 20);
    assertThat(r.precopyRoundBytes.get(r.precopyRounds - 1)).isLessThan(r.precopyRoundBytes.get(0) / 4);
    // frozen, the pages the target held already were only named, not sent again (how many
    // changed since the last round depends on the client's pace: most did not)
    assertThat(r.frozenPagesKept).isGreaterThan(3 * r.frozenPagesSent);
    assertThat(r.frozenBytesTransferred).isLessThan(32L << 20);
    assertThat(r.bytesTransferred).as("pre-copy sends at most 1.5x the pod's memory")
        .isLessThan((long) (1.5 * r.podMemoryBytes) + (32L << 20));
    assertThat(r.predictedFrozenMs).isPositive();
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void hybridRestoresAtOnceAndFetchesOnlyPagesChangedSinceTheRounds() throws Exception {
    assumeUffd();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("hybrid").dataMiB(64).run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    assertThat(r.strategy).isEqualTo("hybrid");
    TestLab.assertInvariants(r);
    assertThat(r.precopyRounds).isGreaterThanOrEqualTo(2);
    assertThat(r.frozenBytesTransferred).as("no memory pages while frozen").isLessThan(8L << 20);
    assertThat(r.postcopyPagesKept).as("pages the rounds delivered are not sent again").isGreaterThan(3 * r.postcopyPages);
    assertThat(r.atRiskMs).isPositive();
    assertThat(r.restoreMode).isEqualTo("lazy-remote");
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void autoKeepsATightBudgetWithHybridOnlyWhenAllowedAndAbortRefusesBeforeFreezing() throws Exception {
    assumeUffd();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("auto").dataMiB(32)
        .budget(360, true, "proceed").run();
    assertThat(r.outcome).isEqualTo("migrated");
    assertThat(r.strategyRequested).isEqualTo("auto");
    assertThat(r.strategy).isEqualTo("hybrid");
    assertThat(r.strategyReason).contains("360 ms budget");
    TestLab.assertInvariants(r);

    // nothing can keep 100 ms: refused before anything is recorded or touched
    String lab2 = TestLab.newName();
    assertThatThrownBy(() -> new DemoRunner(lab2, System.out, List.of()).strategy("auto").dataMiB(16)
        .budget(100, false, "abort").run())
        .hasMessageContaining("100 ms").hasMessageContaining("refused");

    // pre-copy re-predicts after each round; under "abort" it refuses before the freeze
    String lab3 = TestLab.newName();
    MigrationReport refused = new DemoRunner(lab3, System.out, List.of()).strategy("precopy").dataMiB(16)
        .budget(100, false, "abort").run();
    assertThat(refused.outcome).isEqualTo("rolled-back");
    assertThat(refused.precopyRounds).isPositive();
    assertThat(refused.error).contains("100 ms budget").contains("refused before freezing");
    assertThat(refused.frozenMs).as("nothing was frozen").isNull();
    assertThat(refused.writesLost).isZero();
    assertThat(refused.tcpConnectionPreserved).isTrue();
    TestLab.assertNothingLeft(lab3);
    TestLab.assertNothingLeft(lab2);
  }

  @Test
  void targetKilledInEachLiveStrategysFrozenRoundRollsBackWithTheConnection() throws Exception {
    assumeUffd();
    for (String strategy : List.of("precopy", "hybrid")) {
      String lab = TestLab.newName();
      MigrationReport r = new DemoRunner(lab, System.out, List.of("target-agent-crash-in-transfer")).strategy(strategy)
          .dataMiB(16)
          .afterMigration((l, c, rep) -> {
            assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
            assertThat(c.migrations()).singleElement()
                .satisfies(m -> assertThat(m.phase()).isEqualTo(MigrationPhase.ROLLED_BACK));
            Lab.up(lab, List.of("host-a", "host-b"), 8192); // the target's agent is back and cleans up
            assertThat(Exec.run("runc", "list", "-q").stdout()).doesNotContain(lab + "-host-b-");
          })
          .run();
      assertThat(r.outcome).as(strategy).isEqualTo("rolled-back");
      assertThat(r.error).as(strategy).contains("Transferring");
      assertThat(r.writesLost).as(strategy).isZero();
      assertThat(r.tcpConnectionPreserved).as(strategy + ": the client's connection survives the rollback").isTrue();
      assertThat(r.ipAfter).isEqualTo(r.ipBefore);
      TestLab.assertNothingLeft(lab);
    }
  }

  @Test
  void linkCutDuringPrecopyRoundsRollsBackAndThePodNeverStops() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      // capped at 2 MB/s of wire bytes, memory round 1 takes seconds even compressed: time to cut
      // the link while the pod runs
      CompletableFuture<MigrationReport> migration = t.migrateInBackground(
          new MigrationOptions("redis", "host-b", "precopy", List.of(), 2));
      MigrationRecord m = t.waitForPhase(MigrationPhase.PRECOPY, 60);
      t.waitForStep(m.id(), "precopy-memory", 60);
      Thread.sleep(500);
      MigrationReport r = t.withLinkCut("host-b", migration, 120);
      assertThat(r.outcome).isEqualTo("rolled-back");
      assertThat(r.error).contains("Precopy").contains("no progress");
      assertThat(r.frozenMs).as("cut before the freeze: the pod was never frozen").isNull();
      assertThat(t.store.pod("redis").orElseThrow().host()).isEqualTo("host-a");
      assertThat(Netns.exists(t.name + "-host-b-redis")).as("target placeholder removed").isFalse();
      Thread.sleep(1000);
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).isTrue();
      assertThat(l.maxGapMs).as("the client never waited on a frozen pod").isLessThan(1000);
    }
  }

  @Test
  void sourceAgentKilledDuringPrecopyRoundsLeavesThePodRunningAndIsRolledBack() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      CompletableFuture<MigrationReport> migration = t.migrateInBackground(
          new MigrationOptions("redis", "host-b", "precopy", List.of(), 10));
      t.waitForPhase(MigrationPhase.PRECOPY, 60);
      Thread.sleep(1500);
      t.killAgent("host-a");
      MigrationReport r = migration.get(120, TimeUnit.SECONDS);
      assertThat(r.outcome).isNotEqualTo("migrated");
      assertThat(r.frozenMs).as("the pod was never frozen").isNull();
      assertThat(Netns.exists(t.name + "-host-b-redis")).as("the target was cleaned up").isFalse();

      Lab.up(t.name, List.of("host-a", "host-b"), 4096); // the agent is back
      t.cli("ps");
      String id = t.store.migrations().get(0).id();
      assertThat(t.store.migration(id).orElseThrow().phase().isFinal()).isTrue();
      try (var a = t.lab.client("host-a")) {
        assertThat(a.pod("redis").running()).isTrue();
      }
      Thread.sleep(1000);
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).as("the pod kept running throughout").isTrue();
    }
  }

  @Test
  void sourceAgentKilledWhileThePodIsFrozenInALazyDumpIsThawedByItsSuccessor() throws Exception {
    assumeUffd();
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      // capped at 5 MB/s, the frozen round takes a second or more: time to kill the source agent
      CompletableFuture<MigrationReport> migration = t.migrateInBackground(
          new MigrationOptions("redis", "host-b", "precopy", List.of(), 5));
      t.waitForPhase(MigrationPhase.TRANSFERRING, 300);
      t.killAgent("host-a");
      MigrationReport r = migration.get(120, TimeUnit.SECONDS);
      assertThat(r.outcome).isEqualTo("failed");
      assertThat(r.error).contains("rollback incomplete").contains("host-a");

      // the frozen tree outlived its agent (CRIU holds it); the next agent thaws it
      Lab.up(t.name, List.of("host-a", "host-b"), 4096);
      TestLab.CliResult recovered = t.cli("ps");
      assertThat(recovered.err()).contains("rolled back");
      try (var a = t.lab.client("host-a")) {
        assertThat(a.pod("redis").running()).isTrue();
      }
      Thread.sleep(1000);
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.acked).isGreaterThan(100);
      assertThat(l.lost).as("every acknowledged write is in the thawed pod").isZero();
      assertThat(l.connectionPreserved).as("its sockets left repair mode before the thaw").isTrue();
    }
  }
}
