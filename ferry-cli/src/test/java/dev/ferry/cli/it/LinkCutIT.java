package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.runtime.Netns;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The link between the hosts is cut, or the transfer's connection reset, while the frozen
 * pod's images are in flight. A break the transfer can resume from (a new connection within
 * its resume window) costs only the time lost; one it cannot is given up within seconds (not
 * TCP's many minutes), the migration rolls back and the source resumes with every
 * acknowledged write and the client's connection.
 */
class LinkCutIT {
  @Test
  void linkCutDuringTheFrozenTransferRollsBackAndKeepsTheClientsConnection() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      // capped at 10 MB/s, the ~50 MB of images take seconds to move: time to cut the link
      CompletableFuture<MigrationReport> migration =
          t.migrateInBackground(new MigrationOptions("redis", "host-b", "cold", List.of(), 10));
      t.waitForPhase(MigrationPhase.TRANSFERRING, 60);
      Thread.sleep(500);
      MigrationReport r = t.withLinkCut("host-b", migration, 90);
      assertThat(r.outcome).isEqualTo("rolled-back");
      assertThat(r.error).contains("Transferring").contains("no progress");
      assertThat(t.store.pod("redis").orElseThrow().host()).isEqualTo("host-a");
      assertThat(Netns.exists(t.name + "-host-b-redis")).as("target placeholder removed").isFalse();
      Thread.sleep(1000);
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).as("the client's connection survives the rollback").isTrue();
    }
  }

  @Test
  void aConnectionResetMidTransferResumesAndTheMigrationCompletes() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      String ip = t.store.pod("redis").orElseThrow().spec().identity().ip();
      MigrationReport r = t.coordinator.migrate(
          new MigrationOptions("redis", "host-b", "cold", List.of("transfer-connection-drop"), 20),
          dev.ferry.migration.ProgressListener.NONE);
      assertThat(r.outcome).as(r.error).isEqualTo("migrated");
      assertThat(r.transferResumes).as("resumes").isEqualTo(1);
      assertThat(r.ipAfter).isEqualTo(ip);
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).isTrue();
    }
  }

  @Test
  void aLinkCutShorterThanTheResumeWindowResumesAndTheMigrationCompletes() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      String ip = t.store.pod("redis").orElseThrow().spec().identity().ip();
      CompletableFuture<MigrationReport> migration =
          t.migrateInBackground(new MigrationOptions("redis", "host-b", "cold", List.of(), 10));
      t.waitForPhase(MigrationPhase.TRANSFERRING, 60);
      Thread.sleep(500);
      // 7 s: longer than the 5 s after which a silent connection is cut, well within the 10 s
      // in which the transfer may resume
      t.cutLinkFor("host-b", 7_000);
      MigrationReport r = migration.get(120, java.util.concurrent.TimeUnit.SECONDS);
      assertThat(r.outcome).as(r.error).isEqualTo("migrated");
      assertThat(r.transferResumes).as("resumes").isGreaterThanOrEqualTo(1);
      assertThat(r.ipAfter).isEqualTo(ip);
      assertThat(t.store.pod("redis").orElseThrow().host()).isEqualTo("host-b");
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).isTrue();
    }
  }
}
