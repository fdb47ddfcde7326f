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
 * The source agent is killed -9 while the frozen pod's images are in flight. Nobody can
 * resume the source then: the migration ends "failed" and stays open for recovery. Once the
 * agent is back, the next ferry command rolls it back from the durable record and the pod
 * runs on its source again with every acknowledged write.
 */
class SourceAgentCrashIT {
  @Test
  void sourceAgentKilledWhileFrozenIsRecoveredOnceItIsBack() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      CompletableFuture<MigrationReport> migration =
          t.migrateInBackground(new MigrationOptions("redis", "host-b", "cold", List.of(), 10));
      t.waitForPhase(MigrationPhase.TRANSFERRING, 60);
      t.killAgent("host-a");

      MigrationReport r = migration.get(90, TimeUnit.SECONDS);
      assertThat(r.outcome).isEqualTo("failed");
      assertThat(r.error).contains("rollback incomplete").contains("host-a");
      String id = t.store.migrations().get(0).id();
      assertThat(t.store.migration(id).orElseThrow().phase()).isEqualTo(MigrationPhase.ROLLING_BACK);
      assertThat(Netns.exists(t.name + "-host-b-redis")).as("the target was cleaned up at once").isFalse();

      Lab.up(t.name, List.of("host-a", "host-b"), 4096); // the agent is back
      TestLab.CliResult recovered = t.cli("ps");
      assertThat(recovered.err()).contains("recovered migration " + id).contains("rolled back");
      assertThat(t.store.migration(id).orElseThrow().phase()).isEqualTo(MigrationPhase.ROLLED_BACK);
      try (var a = t.lab.client("host-a")) {
        assertThat(a.pod("redis").running()).isTrue();
      }
      Thread.sleep(1000);
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.acked).isGreaterThan(100);
      assertThat(l.lost).as("every acknowledged write is in the recovered pod").isZero();
    }
  }
}
