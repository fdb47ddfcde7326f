package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.lab.Lab;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.runtime.Netns;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Post-copy and hybrid freeze the pod in a lazy dump whose tree CRIU keeps frozen to serve its
 * pages. A failure before the commit point (the source's agent dying, the link between the hosts
 * cut) must still give the pod back on its source, running, with every acknowledged write and
 * the client's connection.
 */
class LazyStrategyFailureIT {
  private static final List<String> LAZY = List.of("postcopy", "hybrid");

  @Test
  void sourceAgentDyingWhileThePodIsFrozenInALazyDumpLeavesItToTheNextAgent() throws Exception {
    TestLab.assumeUserfaultfd("post-copy and hybrid are");
    for (String strategy : LAZY) {
      try (TestLab t = TestLab.up()) {
        TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(16);
        MigrationReport r = t.migrateInBackground(
            new MigrationOptions("redis", "host-b", strategy, List.of("source-agent-crash-in-transfer"))).get(180, TimeUnit.SECONDS);
        assertThat(r.outcome).as(strategy).isNotEqualTo("migrated");
        assertThat(r.frozenMs).as(strategy + ": the pod was frozen when its agent died").isNotNull();
        assertThat(Netns.exists(t.name + "-host-b-redis")).as(strategy + ": the target was cleaned up").isFalse();

        // the frozen tree outlived its agent (CRIU holds it); the next agent thaws it
        Lab.up(t.name, List.of("host-a", "host-b"), 4096);
        t.cli("ps");
        String id = t.store.migrations().get(0).id();
        assertThat(t.store.migration(id).orElseThrow().phase().isFinal()).as(strategy).isTrue();
        assertThat(t.store.pod("redis").orElseThrow().host()).as(strategy).isEqualTo("host-a");
        try (var a = t.lab.client("host-a")) {
          assertThat(a.pod("redis").running()).as(strategy).isTrue();
        }
        Thread.sleep(1000);
        LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
        assertThat(l.acked).as(strategy).isGreaterThan(100);
        assertThat(l.lost).as(strategy + ": every acknowledged write is in the thawed pod").isZero();
        assertThat(l.connectionPreserved).as(strategy + ": its sockets left repair mode before the thaw").isTrue();
      }
    }
  }

  @Test
  void linkCutWhileThePodIsFrozenInALazyDumpRollsBackWithTheConnection() throws Exception {
    TestLab.assumeUserfaultfd("post-copy and hybrid are");
    for (String strategy : LAZY) {
      try (TestLab t = TestLab.up()) {
        TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(16);
        // the frozen transfer waits 3 s before it starts: the link goes down inside the frozen window
        CompletableFuture<MigrationReport> migration = t.migrateInBackground(
            new MigrationOptions("redis", "host-b", strategy, List.of("stall-frozen-transfer")));
        t.waitForPhase(MigrationPhase.TRANSFERRING, 120);
        MigrationReport r = t.withLinkCut("host-b", migration, 180);
        assertThat(r.outcome).as(strategy).isEqualTo("rolled-back");
        assertThat(r.error).as(strategy).contains("Transferring");
        assertThat(r.frozenMs).as(strategy).isNotNull();
        assertThat(t.store.pod("redis").orElseThrow().host()).as(strategy).isEqualTo("host-a");
        assertThat(Netns.exists(t.name + "-host-b-redis")).as(strategy + ": target placeholder removed").isFalse();
        Thread.sleep(1000);
        LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
        assertThat(l.lost).as(strategy).isZero();
        assertThat(l.connectionPreserved).as(strategy + ": the cancelled lazy dump gave the sockets back").isTrue();
      }
    }
  }
}
