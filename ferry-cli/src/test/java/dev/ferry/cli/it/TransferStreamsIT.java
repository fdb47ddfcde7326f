package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.migration.MigrationOptions;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Agents that send every transfer over two connections ({@code --transfer-streams 2}, from
 * {@code FERRY_TRANSFER_STREAMS}): Redis under load moves there (cold: its images cut into one
 * range per stream) with a connection reset mid-transfer (one stream resumes), and back with
 * pre-copy (presync, memory rounds and the frozen round each over both streams).
 */
class TransferStreamsIT {
  @Test
  void migrationsOverTwoStreamsKeepEveryWriteAndResumeAStreamThatBroke() throws Exception {
    TestLab.assumeHostReady();
    try (TestLab t = TestLab.up()) {
      for (String host : List.of("host-a", "host-b")) {
        t.restartAgent(host, Map.of("FERRY_TRANSFER_STREAMS", "2"));
      }
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(32);
      String ip = t.store.pod("redis").orElseThrow().spec().identity().ip();

      MigrationReport there = t.coordinator.migrate(
          new MigrationOptions("redis", "host-b", "cold", List.of("transfer-connection-drop"), 20),
          dev.ferry.migration.ProgressListener.NONE);
      assertThat(there.outcome).as(there.error).isEqualTo("migrated");
      assertThat(there.transferResumes).as("a stream resumed").isGreaterThanOrEqualTo(1);
      assertThat(there.ipAfter).isEqualTo(ip);

      MigrationReport back = t.coordinator.migrate(new MigrationOptions("redis", "host-a", "precopy", List.of()),
          dev.ferry.migration.ProgressListener.NONE);
      assertThat(back.outcome).as(back.error).isEqualTo("migrated");
      assertThat(back.precopyRounds).isPositive();
      assertThat(back.ipAfter).isEqualTo(ip);
      assertThat(t.store.pod("redis").orElseThrow().host()).isEqualTo("host-a");

      for (String host : List.of("host-a", "host-b")) {
        assertThat(Files.readString(t.lab.config().host(host).logFile()))
            .as("%s's agent sent its transfers over two streams", host).contains("over 2 streams");
      }
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).isTrue();
    }
  }
}
