package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.lab.Lab;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.ProgressListener;
import dev.ferry.runtime.Netns;
import java.nio.file.Files;
import java.nio.file.Path;
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
      var pod = t.coordinator.runPod("host-a", "redis", List.of(new ContainerSpec("redis", DemoRunner.REDIS, List.of())), 512);
      Path control = t.lab.config().runDir().resolve("client");
      Process client = DemoRunner.startClient(t.lab, pod.spec().identity().ip(), control, 32);
      DemoRunner.waitFor(control, s -> s.connected && s.acked >= 200, 120, "redis to load 32 MiB");
      CompletableFuture<MigrationReport> migration = CompletableFuture.supplyAsync(() -> {
        try {
          return t.coordinator.migrate(new MigrationOptions("redis", "host-b", "cold", List.of(), 10), ProgressListener.NONE);
        } catch (MigrationFailedException e) {
          return e.report();
        }
      });
      waitForPhase(t, MigrationPhase.TRANSFERRING);
      var hostA = t.lab.config().host("host-a");
      ProcessHandle agent = ProcessHandle.of(t.lab.agentPid(hostA).orElseThrow()).orElseThrow();
      agent.destroyForcibly();
      agent.onExit().get(10, TimeUnit.SECONDS);

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
      Files.createFile(control.resolve("stop"));
      assertThat(client.waitFor(120, TimeUnit.SECONDS)).isTrue();
      LoadResult l = Json.readFile(control.resolve("result.json"), LoadResult.class);
      assertThat(l.acked).isGreaterThan(100);
      assertThat(l.lost).as("every acknowledged write is in the recovered pod").isZero();
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
