package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.Main;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.lab.Lab;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.migration.MigrationStore;
import dev.ferry.migration.PodRecord;
import dev.ferry.migration.ProgressListener;
import dev.ferry.runtime.CapabilityProbe;
import dev.ferry.runtime.CriuBinary;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.HostCapabilities;
import dev.ferry.runtime.Netns;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;

/** A real lab (namespaces, agents, runc, CRIU) for one test class; checks nothing leaked. */
final class TestLab implements AutoCloseable {
  /** A pod that prints 1, 2, 3, ... to its log, 20 times a second. */
  static final List<String> COUNTER = List.of("busybox", "sh", "-c",
      "i=0; while true; do i=$((i+1)); echo $i; echo $i > /data/counter; sleep 0.05; done");

  private static HostCapabilities caps;

  final String name = newName();
  Lab lab;
  MigrationStore store;
  Coordinator coordinator;

  /** A fresh lab name: short, no '-', unlikely to meet another test's. */
  static String newName() {
    return "t" + Integer.toString(ThreadLocalRandom.current().nextInt(1 << 24, 1 << 28), 36);
  }

  /** Skips (with the reason) where this host cannot run the integration tests. */
  static void assumeHostReady() {
    assumeTrue("root".equals(System.getProperty("user.name")), "integration tests need root (namespaces, runc, CRIU)");
    assumeTrue(Exec.run("runc", "--version").ok(), "runc is not installed; run scripts/setup-host.sh");
    assumeTrue(capabilities().criuUsable(), "CRIU cannot checkpoint here: " + capabilities().unusableReason());
  }

  /** Skips (with the reason) where the kernel lacks userfaultfd, which {@code what} needs. */
  static void assumeUserfaultfd(String what) {
    assumeHostReady();
    assumeTrue(capabilities().userfaultfd(), "this kernel has no userfaultfd: " + what + " impossible here");
  }

  /**
   * What a migrated pod's client must see: its acknowledged writes all there, the same IP and
   * UID, its one connection kept.
   */
  static void assertInvariants(MigrationReport r) {
    assertThat(r.writesAcked).isGreaterThan(100);
    assertThat(r.writesLost).as("acknowledged writes lost").isZero();
    assertThat(r.tcpConnectionPreserved).as("the client's one connection kept").isTrue();
    assertThat(r.ipAfter).isEqualTo(r.ipBefore);
    assertThat(r.uidAfter).isEqualTo(r.uidBefore);
  }

  /** What this host can do, probed once for all tests. */
  static synchronized HostCapabilities capabilities() {
    if (caps == null) {
      caps = CapabilityProbe.probe(CriuBinary.locate());
    }
    return caps;
  }

  static TestLab up() {
    return up(dev.ferry.lab.LabConfig.HostEntry.DEFAULT_POD_SLOTS);
  }

  /** A lab whose hosts hold {@code podSlots} pods each (agents over mutual TLS, the default). */
  static TestLab up(int podSlots) {
    return up(podSlots, true);
  }

  /** A lab whose agents move images to each other over mutual TLS. */
  static TestLab upWithTls() {
    return up(dev.ferry.lab.LabConfig.HostEntry.DEFAULT_POD_SLOTS, true);
  }

  private static TestLab up(int podSlots, boolean tls) {
    assumeHostReady();
    TestLab t = new TestLab();
    t.lab = Lab.up(t.name, List.of("host-a", "host-b"), 4096, podSlots, tls);
    t.store = new MigrationStore(t.lab.config().stateDir());
    t.coordinator = dev.ferry.cli.LabHosts.coordinator(t.lab, t.store);
    return t;
  }

  /** A Redis pod on host-a with the load client writing to it (and {@code populateMiB} loaded first). */
  record RedisUnderLoad(PodRecord pod, Process client, Path control) {}

  RedisUnderLoad runRedisUnderLoad(long populateMiB) throws Exception {
    PodRecord pod = coordinator.runPod("host-a", "redis",
        List.of(new ContainerSpec("redis", DemoRunner.REDIS, List.of())), 512);
    Path control = lab.config().runDir().resolve("client");
    Process client = DemoRunner.startClient(lab, pod.spec().identity().ip(), control, populateMiB);
    DemoRunner.waitFor(control, s -> s.connected && s.acked >= 200, 120, "redis to load " + populateMiB + " MiB");
    return new RedisUnderLoad(pod, client, control);
  }

  /** Starts a migration in another thread; its report comes back whether it succeeded or not. */
  CompletableFuture<MigrationReport> migrateInBackground(MigrationOptions options) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return coordinator.migrate(options, ProgressListener.NONE);
      } catch (MigrationFailedException e) {
        return e.report();
      }
    });
  }

  /** Kills a host's agent with SIGKILL and waits until it is gone. */
  void killAgent(String host) throws Exception {
    ProcessHandle agent = ProcessHandle.of(lab.agentPid(lab.config().host(host)).orElseThrow()).orElseThrow();
    agent.destroyForcibly();
    agent.onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
  }

  /** Kills a host's agent and starts it again with {@code env} (none: as the lab does), ready. */
  void restartAgent(String host, java.util.Map<String, String> env) throws Exception {
    killAgent(host);
    lab.startAgent(lab.config().host(host), env);
    lab.waitReady(lab.config().host(host));
  }

  /** Takes a host's port on the lab bridge down, waits for {@code migration}, then brings it back. */
  MigrationReport withLinkCut(String host, CompletableFuture<MigrationReport> migration, int seconds) throws Exception {
    String port = "h-" + host;
    dev.ferry.runtime.Exec.checked("ip", "-n", lab.config().bridgeNs(), "link", "set", port, "down");
    try {
      return migration.get(seconds, java.util.concurrent.TimeUnit.SECONDS);
    } finally {
      dev.ferry.runtime.Exec.checked("ip", "-n", lab.config().bridgeNs(), "link", "set", port, "up");
    }
  }

  /** Takes {@code host}'s port on the lab bridge down for {@code ms}, then up again. */
  void cutLinkFor(String host, long ms) throws Exception {
    String port = "h-" + host;
    dev.ferry.runtime.Exec.checked("ip", "-n", lab.config().bridgeNs(), "link", "set", port, "down");
    try {
      Thread.sleep(ms);
    } finally {
      dev.ferry.runtime.Exec.checked("ip", "-n", lab.config().bridgeNs(), "link", "set", port, "up");
    }
  }

  /** Waits until the lab's (only) migration is in {@code phase}. */
  MigrationRecord waitForPhase(MigrationPhase phase, int seconds) throws InterruptedException {
    long deadline = System.currentTimeMillis() + seconds * 1000L;
    while (System.currentTimeMillis() < deadline) {
      var ms = store.migrations();
      if (!ms.isEmpty() && ms.get(0).phase() == phase) {
        return ms.get(0);
      }
      Thread.sleep(20);
    }
    throw new AssertionError("migration never reached " + phase + ": " + store.migrations());
  }

  /** Waits until {@code step} of migration {@code id} has started. */
  void waitForStep(String id, String step, int seconds) throws InterruptedException {
    long deadline = System.currentTimeMillis() + seconds * 1000L;
    while (System.currentTimeMillis() < deadline) {
      if (store.steps(id).containsKey(step)) {
        return;
      }
      Thread.sleep(20);
    }
    throw new AssertionError("migration " + id + " never started step " + step + ": " + store.steps(id));
  }

  PodRecord runCounter(String pod, String host) throws Exception {
    PodRecord p = coordinator.runPod(host, pod, List.of(new ContainerSpec("app", COUNTER, List.of())), 64);
    waitForCount(pod, 5);
    return p;
  }

  /** The counter's log as numbers; fails if it ever restarted or skipped. */
  List<Long> counts(String pod) {
    List<Long> out = new ArrayList<>();
    for (String line : coordinator.logs(pod, "app").split("\n")) {
      if (!line.isBlank()) {
        out.add(Long.parseLong(line.strip()));
      }
    }
    return out;
  }

  long waitForCount(String pod, long atLeast) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 20_000;
    while (System.currentTimeMillis() < deadline) {
      List<Long> c = counts(pod);
      if (!c.isEmpty() && c.get(c.size() - 1) >= atLeast) {
        return c.get(c.size() - 1);
      }
      Thread.sleep(50);
    }
    throw new AssertionError("counter of " + pod + " did not reach " + atLeast + ": " + counts(pod));
  }

  static void assertContiguousFromOne(List<Long> counts) {
    for (int i = 0; i < counts.size(); i++) {
      assertThat(counts.get(i)).as("log line %d (a restart or a lost write shows here)", i).isEqualTo(i + 1L);
    }
  }

  /** Runs the CLI in this JVM against this lab and captures what it printed. */
  CliResult cli(String... args) {
    List<String> all = new ArrayList<>(List.of("--lab", name));
    all.addAll(List.of(args));
    return runCli(all.toArray(new String[0]));
  }

  static synchronized CliResult runCli(String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    try {
      System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
      int code = Main.run(args);
      return new CliResult(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
      out.print(o.toString(StandardCharsets.UTF_8));
      err.print(e.toString(StandardCharsets.UTF_8));
    }
  }

  record CliResult(int code, String out, String err) {}

  List<String> containers() {
    List<String> ids = new ArrayList<>();
    for (String id : Exec.run("runc", "list", "-q").stdout().split("\n")) {
      if (id.startsWith(name + "-")) {
        ids.add(id);
      }
    }
    return ids;
  }

  @Override
  public void close() {
    if (store != null) {
      store.close();
    }
    Lab.down(name);
    assertNothingLeft(name);
  }

  /** No namespace, container, agent process or directory of the lab is left. */
  static void assertNothingLeft(String labName) {
    assertThat(Netns.list(labName + "-")).as("network namespaces left").isEmpty();
    assertThat(Exec.run("runc", "list", "-q").stdout().lines().filter(l -> l.startsWith(labName + "-")))
        .as("runc containers left").isEmpty();
    assertThat(Exec.run("pgrep", "-af", "/run/ferry/" + labName + "/").stdout().lines()
        .filter(l -> !l.contains("pgrep")).toList()).as("processes left").isEmpty();
    assertThat(Files.exists(Path.of("/run/ferry", labName))).as("agent directories left").isFalse();
    assertThat(Files.exists(Path.of("/var/lib/ferry", labName))).as("lab state left").isFalse();
  }
}
