package dev.ferry.cli.demo;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.Json;
import dev.ferry.cli.LabHosts;
import dev.ferry.api.MigrationReport;
import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationStore;
import dev.ferry.migration.PodRecord;
import dev.ferry.migration.ProgressListener;
import java.io.File;
import java.io.IOException;
import dev.ferry.agent.AgentClient;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The end-to-end demo, also used by tests and benchmarks: a lab with host-a and host-b, a
 * Redis pod on host-a, a client in the client namespace writing over one TCP connection,
 * a migration to host-b, every acknowledged write read back through the same connection.
 */
public final class DemoRunner {
  /** The Redis pod's command line: no persistence, so everything lives in memory. */
  public static final List<String> REDIS = List.of("redis-server", "--port", "6379", "--bind", "0.0.0.0",
      "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/data", "--enable-debug-command", "yes");

  private final String labName;
  private final PrintStream out;
  private final List<String> faults;
  private AfterMigration afterMigration = (lab, coordinator, report) -> {};
  private long dataMiB;
  private String strategy = "cold";

  /** Data to load into Redis before the migration (the client keeps writing during it). */
  public DemoRunner dataMiB(long mib) {
    this.dataMiB = mib;
    return this;
  }

  /** Migration strategy. */
  public DemoRunner strategy(String s) {
    this.strategy = s;
    return this;
  }

  /** The Redis pod's drain command on runsc: closes every client's connection (not its own). */
  public static final List<String> REDIS_DRAIN = List.of("/usr/bin/redis-cli", "client", "kill", "type", "normal");

  private String runtime = "runc";

  /** The pod's runtime: "runc" (default) or "runsc"; on runsc the client reconnects (see {@link LoadClient}). */
  public DemoRunner runtime(String r) {
    this.runtime = r == null ? "runc" : r;
    return this;
  }

  private long maxFreezeMs;
  private boolean allowPostcopy;
  private String onBudgetMiss = "proceed";

  /** Freeze budget and post-copy permission for --strategy auto. */
  public DemoRunner budget(long maxFreeze, boolean allowPostcopy, String onBudgetMiss) {
    this.maxFreezeMs = maxFreeze;
    this.allowPostcopy = allowPostcopy;
    this.onBudgetMiss = onBudgetMiss;
    return this;
  }

  private long bandwidthMBps;

  /** The migration's bandwidth cap in MB/s ({@code ferry migrate --bandwidth}); 0 for none. */
  public DemoRunner bandwidth(long mbps) {
    this.bandwidthMBps = mbps;
    return this;
  }

  private boolean vip;
  private int probeHz;
  private dev.ferry.migration.HookSpec.Hooks hooks = dev.ferry.migration.HookSpec.Hooks.NONE;

  private boolean tls = true;

  /** Agents move images and memory to each other over mutual TLS (the default), or in clear (see {@code ferry lab up}). */
  public DemoRunner tls(boolean t) {
    this.tls = t;
    return this;
  }

  /** Sends the client through a service VIP (nftables DNAT in the client namespace) instead of the pod's IP. */
  public DemoRunner vip(boolean v) {
    this.vip = v;
    return this;
  }

  /** Probes who answers for the pod's IP {@code hz} times a second during the migration (0: not at all). */
  public DemoRunner probeIpOwners(int hz) {
    this.probeHz = hz;
    return this;
  }

  /** Pre- and post-migration hooks of the migration. */
  public DemoRunner hooks(dev.ferry.migration.HookSpec.Hooks h) {
    this.hooks = h;
    return this;
  }

  /** Looks at the lab after the migration and the client's read-back, before the lab goes down. */
  @FunctionalInterface
  public interface AfterMigration {
    void check(Lab lab, Coordinator coordinator, MigrationReport report) throws Exception;
  }

  /**
   * @param faults faults to inject into the migration (tests)
   */
  public DemoRunner(String labName, PrintStream out, List<String> faults) {
    this.labName = labName;
    this.out = out;
    this.faults = faults;
  }

  /** Acts on the lab once the client writes, right before the migration starts (tests). */
  @FunctionalInterface
  public interface BeforeMigration {
    /** @param podIp the pod's address, where the client's Redis listens */
    void prepare(Lab lab, String podIp) throws Exception;
  }

  private BeforeMigration beforeMigration = (lab, podIp) -> {};

  /** Sets what to do right before the migration (tests: plant data, start a capture). */
  public DemoRunner beforeMigration(BeforeMigration prepare) {
    this.beforeMigration = prepare;
    return this;
  }

  /** Sets a check to run before the lab is taken down (tests). */
  public DemoRunner afterMigration(AfterMigration check) {
    this.afterMigration = check;
    return this;
  }

  /** Runs the demo; the lab is taken down at the end, pass or fail. */
  public MigrationReport run() throws Exception {
    Lab.down(labName); // a previous demo that was killed may have left its lab
    Process client = null;
    IpOwnerProber prober = null;
    try {
      out.println("== bringing up lab '" + labName + "': host-a, host-b and a client, in network namespaces");
      Lab lab = Lab.up(labName, List.of("host-a", "host-b"), 8192, LabConfig.HostEntry.DEFAULT_POD_SLOTS, tls);
      try (MigrationStore store = new MigrationStore(lab.config().stateDir())) {
        Coordinator coordinator = LabHosts.coordinator(lab, store);
        boolean runsc = "runsc".equals(runtime);
        PodRecord pod = runsc
            ? coordinator.runPod("host-a", "redis", List.of(new ContainerSpec("redis", REDIS, List.of("/usr/bin/redis-cli"))),
                Math.max(1024, dataMiB * 2 + 256), 0, List.of(), "runsc", REDIS_DRAIN)
            : coordinator.runPod("host-a", "redis", List.of(new ContainerSpec("redis", REDIS, List.of())),
                Math.max(1024, dataMiB * 2 + 256));
        String ip = pod.spec().identity().ip();
        out.println("== redis pod on host-a (" + pod.spec().runtime() + "): ip " + ip + ", uid " + pod.spec().identity().uid());
        Path control = lab.config().runDir().resolve("client");
        String serverIp = ip;
        String vipAddress = null;
        if (vip) {
          var svc = coordinator.createService("redis", "redis", 6379);
          serverIp = svc.vip();
          vipAddress = svc.vip() + ":" + svc.port();
          out.println("== service VIP " + vipAddress + " -> pod redis (nftables DNAT in the client namespace)");
        }
        client = startClient(lab, serverIp, control, dataMiB, runsc);
        if (dataMiB > 0) {
          out.println("== loading " + dataMiB + " MiB of data into redis");
        }
        LoadResult before = waitFor(control, s -> s.connected && s.acked >= 500, 600, "the client to connect and write");
        out.println("== client connected from " + lab.config().clientIp() + ":" + before.localPort + ", writing keys");
        if (probeHz > 0) {
          prober = IpOwnerProber.start(lab, ip, probeHz);
          out.println("== probing who answers for " + ip + " at " + probeHz + " Hz (ARP from the client namespace)");
        }
        Thread.sleep(1000);
        awaitWarmAgents(lab, out);
        beforeMigration.prepare(lab, ip);
        out.println("== migrating the pod to host-b");
        MigrationReport report;
        try {
          report = coordinator.migrate(new MigrationOptions("redis", "host-b", strategy, faults, bandwidthMBps, maxFreezeMs, allowPostcopy,
              onBudgetMiss, runtime), hooks, new ConsoleProgressPrinter(out));
        } catch (MigrationFailedException e) {
          report = e.report();
          out.println("== migration failed: " + report.error);
        }
        Thread.sleep(1000);
        if (prober != null) {
          IpOwnerProber.fill(report, prober.stop());
        }
        LoadResult r = stopClient(client, control, 180);
        report.writesAcked = r.acked;
        report.writesLost = r.lost;
        report.downtimeMs = r.maxGapMs;
        downtimeBreakdown(report, r);
        report.tcpConnectionPreserved = r.connectionPreserved && r.verifiedOnSameConnection;
        if (r.reconnects > 0) {
          report.clientReconnects = r.reconnects;
          report.clientReconnectMs = r.maxReconnectMs;
        }
        if (vipAddress != null) {
          report.vip = vipAddress;
          report.vipGapMs = r.maxGapMs;
        }
        afterMigration.check(lab, coordinator, report);
        return report;
      }
    } finally {
      if (prober != null) {
        prober.close();
      }
      if (client != null && client.isAlive()) {
        client.destroyForcibly();
      }
      if (System.getenv("FERRY_DEMO_KEEP_LAB") == null) {
        out.println("== taking lab '" + labName + "' down");
        Lab.down(labName);
      }
    }
  }

  /**
   * Places the client's longest gap against the migration's clock (one machine, one clock):
   * from the freeze to the last reply before the gap, and from the target's network opening to
   * the first reply after it.
   */
  public static void downtimeBreakdown(MigrationReport report, LoadResult r) {
    if (r.maxGapEndEpochMs > 0 && report.freezeStartEpochMs != null) {
      report.downtimeBreakdownMs.put("lastReplyAfterFreeze", r.maxGapStartEpochMs - report.freezeStartEpochMs);
    }
    if (r.maxGapEndEpochMs > 0 && report.networkOpenEpochMs != null) {
      report.downtimeBreakdownMs.put("firstReplyAfterNetworkOpen", r.maxGapEndEpochMs - report.networkOpenEpochMs);
    }
  }

  /**
   * Waits (up to 30 s) until both agents' start-up warm-up is over: a fresh lab's first
   * migration would otherwise share the CPUs with it and run partly interpreted.
   */
  private static void awaitWarmAgents(Lab lab, PrintStream out) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 30_000;
    boolean said = false;
    for (String host : List.of("host-a", "host-b")) {
      try (AgentClient c = lab.client(host)) {
        while (!c.info().warmedUp() && System.currentTimeMillis() < deadline) {
          if (!said) {
            out.println("== waiting for the agents to finish warming up their migration paths");
            said = true;
          }
          Thread.sleep(200);
        }
      }
    }
  }

  /** True when the report shows what the demo promises. */
  public static boolean success(MigrationReport r) {
    return "migrated".equals(r.outcome) && r.writesAcked != null && r.writesAcked > 0 && r.writesLost != null
        && r.writesLost == 0 && r.ipBefore != null && r.ipBefore.equals(r.ipAfter) && r.uidBefore != null
        && r.uidBefore.equals(r.uidAfter) && connectionAsPromised(r)
        && !r.sourceHost.equals(r.targetHost) && (r.ipOwnersMax == null || r.ipOwnersMax == 1);
  }

  /**
   * runc keeps the client's one connection; runsc cannot (the report's tcpConnectionNote says
   * why), so there the client must have reconnected to the same IP and had its writes acknowledged.
   */
  static boolean connectionAsPromised(MigrationReport r) {
    if (r.tcpConnectionNote != null) {
      return r.clientReconnectMs != null || Boolean.TRUE.equals(r.tcpConnectionPreserved);
    }
    return Boolean.TRUE.equals(r.tcpConnectionPreserved);
  }

  public static void printSummary(MigrationReport r, PrintStream out) {
    out.println();
    out.println("Ferry demo: " + r.outcome.toUpperCase() + (success(r) ? "" : "  (NOT what was promised, see below)"));
    out.printf("  pod            %s: %s -> %s (%s, %s)%n", r.pod, r.sourceHost, r.targetHost, r.strategy, r.runtime);
    out.printf("  identity       ip %s -> %s, uid %s -> %s%n", r.ipBefore, r.ipAfter, r.uidBefore, r.uidAfter);
    if (r.transport != null) {
      out.printf("  between hosts  %s%n", r.transport);
    }
    out.printf("  client         %d writes acknowledged, %d lost, one TCP connection kept: %s%n", r.writesAcked, r.writesLost,
        r.tcpConnectionPreserved);
    if (r.tcpConnectionNote != null) {
      out.printf("  connection     not kept: %s; the client reconnected %s time(s), %s ms from its last reply on the old"
          + " connection to its first on the new%n", r.tcpConnectionNote, r.clientReconnects, r.clientReconnectMs);
    }
    out.printf("  downtime       %d ms (longest gap between two acknowledged writes)%s%n", r.downtimeMs,
        r.downtimeBreakdownMs.isEmpty() ? "" : ", " + r.downtimeBreakdownMs);
    out.printf("  frozen         %s ms (freeze -> target running; predicted %s ms), breakdown %s%n", r.frozenMs,
        r.predictedFrozenMs, r.frozenBreakdownMs);
    if (r.strategyReason != null) {
      out.printf("  strategy       %s, asked %s: %s%n", r.strategy, r.strategyRequested, r.strategyReason);
    }
    out.printf("  moved          %s bytes (%s of them while frozen), total %s ms%n", r.bytesTransferred,
        r.frozenBytesTransferred, r.totalMs);
    if (r.precopyRounds > 0) {
      out.printf("  pre-copy       %d rounds, bytes per round %s, dirty rate %.1f MB/s; stopped: %s%n", r.precopyRounds,
          r.precopyRoundBytes, r.dirtyBytesPerSecond == null ? 0 : r.dirtyBytesPerSecond / 1e6, r.precopyStopReason);
      out.printf("                 frozen round sent %s pages, %s pages kept from the rounds%n", r.frozenPagesSent,
          r.frozenPagesKept);
    }
    if (r.budgetMiss != null) {
      out.printf("  budget miss    %s%n", r.budgetMiss);
    }
    if (r.cpuThrottlePercent != null) {
      out.printf("  throttled      pod's CPU capped at %d%% of a CPU during pre-copy%n", r.cpuThrottlePercent);
    }
    if (r.restoreMode != null) {
      out.printf("  restore        %s%s%n", r.restoreMode, r.memoryFillMs == null ? ""
          : ", every page in place " + r.memoryFillMs + " ms after the restore began");
    }
    if (r.atRiskMs != null) {
      out.printf("  post-copy      %d pages fetched after the restore; the pod depended on its source for %d ms%n",
          r.postcopyPages, r.atRiskMs);
      if (r.postcopyPagesSentFirst != null) {
        out.printf("                 %s%n", r.postcopyPagesSentFirst < 0
            ? "the last round's changed set was too large to send first"
            : r.postcopyPagesSentFirst + " pages sent first as the last round's changed set");
      }
    }
    if (r.vip != null) {
      out.printf("  service VIP    %s: longest gap through the VIP %d ms%n", r.vip, r.vipGapMs);
    }
    if (r.ipOwnersMax != null) {
      out.printf("  IP owners      %d to %d host(s) answered for %s at one sample (%d samples at %.0f Hz); owners in"
          + " order %s; longest time nobody answered %d ms%n", r.ipOwnersMin, r.ipOwnersMax, r.ipBefore, r.ipOwnerSamples,
          r.ipOwnerHz, r.ipOwnerSequence, r.ipUnownedMaxMs);
      if (r.identityUnansweredMicros != null) {
        out.printf("  hand-over      from the source's link down to the target's up: %.1f ms%n",
            r.identityUnansweredMicros / 1000.0);
      }
    }
    r.hooks.forEach(h -> out.printf("  hook           %s (%s): %s in %d ms: %s%n", h.hook(), h.phase(), h.result(), h.ms(),
        h.answer()));
    r.phases.forEach(p -> out.printf("    %-13s %6d .. %6d ms%n", p.name(), p.startMs(), p.endMs()));
    if (r.error != null) {
      out.println("  error          " + r.error);
    }
  }

  /** Starts the load client in the lab's client namespace; it reports in {@code control}. */
  public static Process startClient(Lab lab, String ip, Path control) throws IOException {
    return startClient(lab, ip, control, 0);
  }

  /** Starts the load client, loading {@code populateMiB} of data into Redis first. */
  public static Process startClient(Lab lab, String ip, Path control, long populateMiB) throws IOException {
    return startClient(lab, ip, control, populateMiB, false);
  }

  /** Starts the load client; with {@code reconnect} it opens a new connection when its connection breaks. */
  public static Process startClient(Lab lab, String ip, Path control, long populateMiB, boolean reconnect)
      throws IOException {
    Files.createDirectories(control);
    Path tmp = Files.createDirectories(control.resolve("tmp")); // goes with the control directory
    List<String> cmd = new ArrayList<>(lab.inClient(dev.ferry.runtime.JavaCommand.of("256m", tmp, "dev.ferry.cli.Main",
        List.of("load-client", "--ip", ip, "--control", control.toString(), "--populate-mib",
            String.valueOf(populateMiB)))));
    if (reconnect) {
      cmd.add("--reconnect");
    }
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectInput(new File("/dev/null"));
    pb.redirectOutput(control.resolve("client.log").toFile());
    pb.redirectErrorStream(true);
    return pb.start();
  }

  /**
   * Tells the load client to stop, waits while it reads every acknowledged key back, and
   * returns what it found.
   */
  public static LoadResult stopClient(Process client, Path control, int timeoutSeconds) throws IOException,
      InterruptedException {
    Files.createFile(control.resolve("stop"));
    if (!client.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      client.destroyForcibly();
      throw new IllegalStateException("the client did not finish verifying within " + timeoutSeconds + " s");
    }
    return Json.readFile(control.resolve("result.json"), LoadResult.class);
  }

  /** Waits until the client's status satisfies {@code ok}. */
  public static LoadResult waitFor(Path control, java.util.function.Predicate<LoadResult> ok, int seconds, String what)
      throws InterruptedException {
    long deadline = System.currentTimeMillis() + seconds * 1000L;
    while (System.currentTimeMillis() < deadline) {
      Path f = control.resolve("status.json");
      if (Files.exists(f)) {
        LoadResult s = Json.readFile(f, LoadResult.class);
        if (ok.test(s)) {
          return s;
        }
      }
      Thread.sleep(100);
    }
    String log = "";
    try {
      log = Files.readString(control.resolve("client.log"));
    } catch (IOException e) {
      // no log
    }
    throw new IllegalStateException("timed out waiting for " + what + "; client log:\n" + log);
  }

  /** Prints phases and transfer progress. */
  public static final class ConsoleProgressPrinter implements ProgressListener {
    private final PrintStream out;
    private final long t0 = System.currentTimeMillis();
    private long last;

    public ConsoleProgressPrinter(PrintStream out) {
      this.out = out;
    }

    @Override
    public void phase(String migrationId, dev.ferry.api.MigrationPhase phase, String what) {
      out.printf("   [%6d ms] %-13s %s%n", System.currentTimeMillis() - t0, phase.displayName(), what);
    }

    @Override
    public void round(String migrationId, Round r) {
      out.printf("   [%6d ms] %-13s round %d: %.1f MiB sent at %.0f MiB/s, dirty rate %.1f MiB/s, frozen window if"
          + " frozen now ~%d ms%n", System.currentTimeMillis() - t0, "Pre-copy", r.round(), r.bytes() / 1048576.0,
          r.bytesPerSecond() / 1048576.0, r.dirtyBytesPerSecond() / 1048576.0, r.predictedFrozenMs());
    }

    @Override
    public void transfer(String migrationId, long bytes, double rate) {
      long now = System.currentTimeMillis();
      if (now - last >= 500) {
        last = now;
        out.printf("   [%6d ms] %-13s %.1f MiB sent, %.0f MiB/s%n", now - t0, "Transferring", bytes / 1048576.0, rate / 1048576.0);
      }
    }
  }
}
