package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.ProgressListener;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The link between the hosts is cut while the frozen pod's images are in flight: the
 * transfer is given up within seconds (not TCP's many minutes), the migration rolls back and
 * the source resumes with every acknowledged write and the client's connection.
 */
class LinkCutIT {
  @Test
  void linkCutDuringTheFrozenTransferRollsBackAndKeepsTheClientsConnection() throws Exception {
    try (TestLab t = TestLab.up()) {
      var pod = t.coordinator.runPod("host-a", "redis", List.of(new ContainerSpec("redis", DemoRunner.REDIS, List.of())), 512);
      Path control = t.lab.config().runDir().resolve("client");
      Process client = DemoRunner.startClient(t.lab, pod.spec().identity().ip(), control, 32);
      DemoRunner.waitFor(control, s -> s.connected && s.acked >= 200, 120, "redis to load 32 MiB");
      // capped at 10 MB/s, the ~50 MB of images take seconds to move: time to cut the link
      CompletableFuture<MigrationReport> migration = CompletableFuture.supplyAsync(() -> {
        try {
          return t.coordinator.migrate(new MigrationOptions("redis", "host-b", "cold", List.of(), 10), ProgressListener.NONE);
        } catch (MigrationFailedException e) {
          return e.report();
        }
      });
      waitForPhase(t, MigrationPhase.TRANSFERRING);
      Thread.sleep(500);
      String port = "h-host-b";
      Exec.checked("ip", "-n", t.lab.config().bridgeNs(), "link", "set", port, "down");
      MigrationReport r;
      try {
        r = migration.get(90, TimeUnit.SECONDS);
      } finally {
        Exec.checked("ip", "-n", t.lab.config().bridgeNs(), "link", "set", port, "up");
      }
      assertThat(r.outcome).isEqualTo("rolled-back");
      assertThat(r.error).contains("Transferring").contains("no progress");
      assertThat(t.store.pod("redis").orElseThrow().host()).isEqualTo("host-a");
      assertThat(Netns.exists(t.name + "-host-b-redis")).as("target placeholder removed").isFalse();
      Thread.sleep(1000);
      Files.createFile(control.resolve("stop"));
      assertThat(client.waitFor(120, TimeUnit.SECONDS)).isTrue();
      LoadResult l = Json.readFile(control.resolve("result.json"), LoadResult.class);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).as("the client's connection survives the rollback").isTrue();
    }
  }

  private static void waitForPhase(TestLab t, MigrationPhase phase) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (System.currentTimeMillis() < deadline) {
      var ms = t.store.migrations();
      if (!ms.isEmpty() && ms.get(0).phase() == phase) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError("migration never reached " + phase + ": " + t.store.migrations());
  }
}
