package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.lab.Lab;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.ProgressListener;
import dev.ferry.runtime.CapabilityProbe;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.HostCapabilities;
import dev.ferry.runtime.Netns;
import dev.ferry.runtime.RunscRuntime;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Pods on gVisor's runsc (issue 8): a Redis pod under a writing client migrates cold with every
 * acknowledged write, its IP and UID; runsc cannot keep the client's TCP connection, so the
 * client reconnects and the report says why and how long it took. A failed migration leaves the
 * source serving its data and nothing behind; what runsc cannot do is refused before anything
 * is frozen or prepared.
 */
class RunscIT {
  /** Skips (with the reason) where runsc cannot run and checkpoint pods here. */
  static void assumeRunsc() {
    TestLab.assumeHostReady();
    HostCapabilities.Runsc r = CapabilityProbe.probeRunsc(RunscRuntime.locate());
    assumeTrue(r.usable(), "no usable runsc: " + r.unusableReason());
  }

  @Test
  void redisUnderLoadMigratesColdWithEveryAcknowledgedWriteAndTheClientReconnects() throws Exception {
    assumeRunsc();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).runtime("runsc").dataMiB(32)
        .afterMigration((l, c, rep) -> {
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-b");
          try (var b = l.client("host-b")) {
            assertThat(b.pod("redis").running()).isTrue();
          }
          // the source copy is gone: no sandbox, no namespace, no pod or migration files
          assertThat(runscContainers(l, "host-a")).as("runsc sandboxes left on the source").isEmpty();
          assertThat(runscContainers(l, "host-b")).singleElement().asString().endsWith("-host-b-redis-redis");
          assertThat(Netns.exists(lab + "-host-a-redis")).isFalse();
          assertThat(filesUnder(l, "host-a", "pods")).isEmpty();
          assertThat(filesUnder(l, "host-a", "migrations")).isEmpty();
          assertThat(filesUnder(l, "host-b", "migrations")).isEmpty();
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).as(r.error).isEqualTo("migrated");
    assertThat(r.runtime).isEqualTo("runsc");
    assertThat(r.strategy).isEqualTo("cold");
    assertThat(r.writesAcked).isGreaterThan(100);
    assertThat(r.writesLost).as("acknowledged writes lost").isZero();
    assertThat(r.ipAfter).isEqualTo(r.ipBefore);
    assertThat(r.uidAfter).isEqualTo(r.uidBefore);
    assertThat(r.tcpConnectionPreserved).as("runsc cannot keep the connection").isFalse();
    assertThat(r.tcpConnectionNote).contains("cannot save established TCP connections");
    assertThat(r.clientReconnects).as("the client reconnected to the same IP").isPositive();
    assertThat(r.clientReconnectMs).isPositive().isLessThan(30_000);
    assertThat(r.frozenMs).isPositive();
    assertThat(r.bytesTransferred).as("at least the 32 MiB loaded").isGreaterThan(32L << 20);
    assertThat(DemoRunner.success(r)).isTrue();
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void aTruncatedImageRollsBackAndTheSourceServesItsDataWithNothingLeftBehind() throws Exception {
    assumeRunsc();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of("truncate-received-image")).runtime("runsc")
        .afterMigration((l, c, rep) -> {
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
          try (var a = l.client("host-a")) {
            assertThat(a.pod("redis").running()).isTrue();
          }
          // the resumed source holds every key the client had acknowledged (the client has stopped by now)
          String dbsize = Exec.run(l.inClient(List.of("redis-cli", "-h", rep.ipBefore, "dbsize"))).stdout().strip();
          assertThat(Long.parseLong(dbsize)).isGreaterThanOrEqualTo(rep.writesAcked);
          assertThat(runscContainers(l, "host-b")).as("runsc sandboxes left on the target").isEmpty();
          assertThat(runscContainers(l, "host-a")).singleElement().asString().endsWith("-host-a-redis-redis");
          assertThat(Netns.exists(lab + "-host-b-redis")).as("target namespace").isFalse();
          assertThat(filesUnder(l, "host-b", "pods")).isEmpty();
          assertThat(filesUnder(l, "host-a", "migrations")).as("source images").isEmpty();
          assertThat(filesUnder(l, "host-b", "migrations")).as("target images").isEmpty();
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("rolled-back");
    assertThat(r.error).contains("step restore").contains("runsc");
    assertThat(r.writesAcked).isGreaterThan(100);
    assertThat(r.writesLost).as("acknowledged writes lost").isZero();
    assertThat(r.ipAfter).isEqualTo(r.ipBefore);
    // drained before the checkpoint, the client reconnected, and only the resumed source could answer it then
    assertThat(r.clientReconnects).isPositive();
    assertThat(r.clientReconnectMs).isPositive();
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void whatRunscCannotDoIsRefusedBeforeAnythingHappens() throws Exception {
    assumeRunsc();
    try (TestLab t = TestLab.up()) {
      t.runCounter("counter", "host-a");
      t.coordinator.runPod("host-a", "kv", List.of(new ContainerSpec("kv", DemoRunner.REDIS, List.of("/usr/bin/redis-cli"))),
          256, 0, List.of(), "runsc", DemoRunner.REDIS_DRAIN);
      assertThat(t.coordinator.store().pod("kv").orElseThrow().spec().runtime()).as("stored with the pod").isEqualTo("runsc");
      // across runtimes, either way
      assertThatThrownBy(() -> t.coordinator.migrate(new MigrationOptions("counter", "host-b", "cold", List.of())
          .withRuntime("runsc"), ProgressListener.NONE))
          .hasMessageContaining("runs on runc, not runsc").hasMessageContaining("between runtimes");
      assertThatThrownBy(() -> t.coordinator.migrate(new MigrationOptions("kv", "host-b", "cold", List.of())
          .withRuntime("runc"), ProgressListener.NONE))
          .hasMessageContaining("runs on runsc, not runc");
      // strategies runsc has no means for
      for (String s : List.of("postcopy", "precopy", "hybrid")) {
        assertThatThrownBy(() -> t.coordinator.migrate(new MigrationOptions("kv", "host-b", s, List.of()),
            ProgressListener.NONE)).hasMessageContaining(s + " is impossible").hasMessageContaining("--strategy cold");
      }
      TestLab.CliResult cli = t.cli("migrate", "kv", "--to", "host-b", "--strategy", "postcopy");
      assertThat(cli.code()).isNotZero();
      assertThat(cli.err()).contains("runsc").contains("lazy pages");
      // several containers in one runsc pod
      assertThatThrownBy(() -> t.coordinator.runPod("host-a", "two", List.of(new ContainerSpec("a", TestLab.COUNTER,
          List.of()), new ContainerSpec("b", TestLab.COUNTER, List.of())), 64, 0, List.of(), "runsc", List.of()))
          .hasMessageContaining("one app container");
      // no side effect: nothing recorded, frozen or prepared; both pods run on as before
      assertThat(t.store.migrations()).isEmpty();
      assertThat(t.store.pod("kv").orElseThrow().host()).isEqualTo("host-a");
      assertThat(t.store.pod("counter").orElseThrow().host()).isEqualTo("host-a");
      try (var a = t.lab.client("host-a"); var b = t.lab.client("host-b")) {
        assertThat(a.pod("kv").running()).isTrue();
        assertThat(a.pod("counter").running()).isTrue();
        assertThat(b.pods()).isEmpty();
      }
      assertThat(Netns.list(t.name + "-host-b-")).isEmpty();
      TestLab.assertContiguousFromOne(t.counts("counter"));
      t.coordinator.deletePod("kv");
      assertThat(runscContainers(t.lab, "host-a")).isEmpty();
    }
  }

  @Test
  void aConnectedPodWithoutADrainCommandIsNotCheckpointedAndKeepsItsConnection() throws Exception {
    assumeRunsc();
    try (TestLab t = TestLab.up()) {
      var pod = t.coordinator.runPod("host-a", "kv", List.of(new ContainerSpec("kv", DemoRunner.REDIS, List.of())), 256, 0,
          List.of(), "runsc", List.of());
      String ip = pod.spec().identity().ip();
      String said = "";
      for (int i = 0; i < 100 && !said.contains("OK"); i++) { // the sandbox's Redis starts listening shortly after the run
        said = Exec.run(t.lab.inClient(List.of("redis-cli", "-h", ip, "set", "before", "1"))).stdout();
        Thread.sleep(100);
      }
      assertThat(said).contains("OK");
      // a client waiting on one connection: runsc cannot save it, and nothing closes it
      Process waiting = new ProcessBuilder(t.lab.inClient(List.of("redis-cli", "-h", ip, "blpop", "q", "0")))
          .redirectErrorStream(true).start();
      Thread.sleep(1000);
      assertThat(waiting.isAlive()).isTrue();
      MigrationReport r;
      try {
        r = t.coordinator.migrate(new MigrationOptions("kv", "host-b", "cold", List.of()), ProgressListener.NONE);
      } catch (dev.ferry.migration.MigrationFailedException e) {
        r = e.report();
      }
      assertThat(r.outcome).isEqualTo("rolled-back");
      assertThat(r.error).contains("step checkpoint").contains("1 TCP connection(s) open").contains("no drain command")
          .contains("runsc cannot checkpoint a connected sandbox");
      // the source was never checkpointed: it serves on, and the waiting client's connection lives
      assertThat(Exec.run(t.lab.inClient(List.of("redis-cli", "-h", ip, "lpush", "q", "hello"))).ok()).isTrue();
      assertThat(waiting.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).as("the waiting client was answered").isTrue();
      assertThat(new String(waiting.getInputStream().readAllBytes())).contains("hello");
      assertThat(Exec.run(t.lab.inClient(List.of("redis-cli", "-h", ip, "get", "before"))).stdout()).contains("1");
      assertThat(t.store.pod("kv").orElseThrow().host()).isEqualTo("host-a");
      assertThat(runscContainers(t.lab, "host-b")).isEmpty();
      assertThat(filesUnder(t.lab, "host-a", "migrations")).isEmpty();
      assertThat(filesUnder(t.lab, "host-b", "migrations")).isEmpty();
      assertThat(Netns.list(t.name + "-host-b-")).isEmpty();
    }
  }

  /** The runsc sandboxes an agent of the lab knows (its own runsc --root). */
  static List<String> runscContainers(Lab l, String host) {
    Path root = l.config().host(host).stateDir().resolve("runsc");
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    return Exec.run(RunscRuntime.locate(), "--root", root.toString(), "list", "-quiet").stdout().lines()
        .filter(x -> !x.isBlank()).toList();
  }

  /** Entries of an agent's directory ("pods", "migrations"). */
  static List<String> filesUnder(Lab l, String host, String dir) throws Exception {
    Path d = l.config().host(host).stateDir().resolve(dir);
    if (!Files.isDirectory(d)) {
      return List.of();
    }
    try (var s = Files.list(d)) {
      return s.map(p -> p.getFileName().toString()).toList();
    }
  }
}
