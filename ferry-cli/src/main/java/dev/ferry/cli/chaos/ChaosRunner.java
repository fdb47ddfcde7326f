package dev.ferry.cli.chaos;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.MigrationPhase;
import dev.ferry.cli.LabHosts;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.IpOwnerProber;
import dev.ferry.cli.demo.IpOwnerSamples;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.migration.MigrationStore;
import dev.ferry.migration.PodRecord;
import dev.ferry.runtime.Exec;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs cells of the fault matrix on a lab of two hosts: a Redis pod under a client's write load
 * is migrated back and forth, each migration struck by one fault; afterwards the lab is healed
 * (agents restarted, link up, rules and mounts removed), interrupted migrations recovered as
 * the next command would, and {@link Invariants} checked. Touches only the lab's namespaces.
 */
public final class ChaosRunner implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ChaosRunner.class);
  static final String POD = "kv";
  static final String CONTAINER = "redis";
  /** A cap that makes each phase last long enough to strike in (tens of MB of images). */
  private static final long BANDWIDTH_MBPS = 40;
  /** Data loaded into Redis before the first cell ($FERRY_CHAOS_POPULATE_MIB; each cell's client adds more). */
  private static final long POPULATE_MIB = Long.parseLong(System.getenv().getOrDefault("FERRY_CHAOS_POPULATE_MIB", "24"));

  private Lab lab;
  private MigrationStore store;
  private Coordinator coordinator;
  private final PrintStream out;
  private Path work;
  private int cellNo;
  private LabSnapshot baseline;
  /** The last cell broke an invariant: the next one starts from a clean lab. */
  private boolean labBroken;
  private String ip;

  /** Brings up (or reuses) lab {@code labName} with two hosts. */
  public ChaosRunner(String labName, PrintStream out) throws IOException {
    this.lab = Lab.up(labName, List.of("host-a", "host-b"), 4096);
    this.store = new MigrationStore(lab.config().stateDir());
    this.coordinator = LabHosts.coordinator(lab, store);
    this.out = out;
    this.work = Files.createDirectories(lab.config().runDir().resolve("chaos"));
  }

  /** Runs one cell and returns what happened; never throws for what the fault did. */
  public CellResult run(Cell cell) throws Exception {
    int n = ++cellNo;
    ensurePod();
    PodRecord pod = store.pod(POD).orElseThrow();
    String source = pod.host();
    String target = source.equals("host-a") ? "host-b" : "host-a";
    Path control = work.resolve("client-" + n);
    Process client = DemoRunner.startClient(lab, ip, control, 0);
    DemoRunner.waitFor(control, s -> s.connected && s.acked >= 100, 60, "the client to write to " + POD);
    IpOwnerProber prober = IpOwnerProber.start(lab, ip, 100);
    Heal heal = new Heal();
    long startedAt = System.currentTimeMillis();
    AtomicReference<String> injectedAt = new AtomicReference<>();
    long[] injectedAtMs = {0};
    Process migration = null;
    Thread injector = null;
    try {
      setUp(cell, target, heal);
      migration = startMigration(cell, target, n);
      Process m = migration;
      if (cell.fault().timed()) {
        injector = new Thread(() -> {
          try {
            Optional<MigrationPhase> at = waitForPhase(startedAt, cell.phase(), m);
            if (at.isPresent()) {
              injectedAtMs[0] = System.currentTimeMillis();
              if (strike(cell, source, target, m, heal)) {
                injectedAt.set(at.get().displayName());
              }
            }
          } catch (Exception e) {
            LOG.warn("cell {}: injecting {} failed: {}", cell, cell.fault().id, e.toString());
          }
        }, "ferry-chaos-injector");
        injector.start();
      } else {
        injectedAtMs[0] = startedAt;
        injectedAt.set(Fault.WHOLE_MIGRATION);
      }
      if (!migration.waitFor(300, TimeUnit.SECONDS)) {
        migration.destroyForcibly();
        LOG.warn("cell {}: the migration took over 300 s; killed", cell);
      }
      if (injector != null) {
        injector.join(60_000);
      }
    } finally {
      heal.run();
    }
    // as the next ferry command would: restart what died, finish or roll back what was interrupted
    Lab.up(lab.config().name(), List.of("host-a", "host-b"), 4096);
    Optional<MigrationRecord> rec = newestSince(startedAt);
    awaitSettled(rec.map(MigrationRecord::id).orElse(null));
    long recoverMs = injectedAtMs[0] == 0 ? 0 : System.currentTimeMillis() - injectedAtMs[0];
    IpOwnerSamples.Summary owners = prober.stop();
    LoadResult load;
    try {
      load = DemoRunner.stopClient(client, control, 120);
    } catch (RuntimeException | IOException e) {
      load = null;
    }
    rec = rec.flatMap(r -> store.migration(r.id()));
    PodRecord after = store.pod(POD).orElse(null);
    Map<String, String> copies = Invariants.copies(lab, POD, CONTAINER);
    List<String> violations = new ArrayList<>();
    for (int i = 0; i < 20; i++) { // cleanups that finish in the background (slots, image directories)
      violations = Invariants.check(POD, copies, after, rec.orElse(null), ip, load, owners, baseline,
          LabSnapshot.of(lab, coordinator));
      if (violations.isEmpty()) {
        break;
      }
      Thread.sleep(500);
      copies = Invariants.copies(lab, POD, CONTAINER);
      after = store.pod(POD).orElse(null);
    }
    if (!violations.isEmpty()) {
      labBroken = true; // what broke (a pod frozen for good, say) must not spill into the next cell
    } else if (copies.values().stream().noneMatch("running"::equals)) {
      baseline = null; // lost: the next cell starts a new pod
    } else {
      resetData();
    }
    String outcome = outcome(rec.orElse(null), copies);
    if (cell.fault() == Fault.NONE && !outcome.equals("migrated")) {
      violations = new ArrayList<>(violations);
      violations.add("without a fault the migration must succeed; it ended " + outcome
          + rec.map(m -> ": " + m.error()).orElse(" (see " + work.resolve("migrate-" + n + ".log") + ")"));
    }
    String error = rec.map(MigrationRecord::error).map(e -> e.lines().findFirst().orElse("")).orElse(null);
    CellResult r = new CellResult(cell.fault().id, cell.phaseName(), cell.strategy(), outcome, injectedAt.get() != null,
        injectedAt.get(), recoverMs, violations.isEmpty(), violations, rec.map(MigrationRecord::id).orElse(null), error,
        load == null ? 0 : load.acked);
    out.printf("  %-20s %-13s %-9s -> %-12s %s%s%n", r.fault(), r.phase(), r.strategy(), r.outcome(),
        r.invariantsHeld() ? "invariants held" : "VIOLATED " + r.violations(),
        r.injected() ? "" : " (fault missed: the migration passed " + r.phase() + " first)");
    return r;
  }

  /** How the migration ended, read from the store once it settled. */
  private static String outcome(MigrationRecord rec, Map<String, String> copies) {
    if (copies.values().stream().noneMatch("running"::equals)) {
      return "lost";
    }
    if (rec == null) {
      return "refused";
    }
    return switch (rec.phase()) {
      case SUCCEEDED -> "migrated";
      case ROLLED_BACK -> "rolled-back";
      case FAILED -> "failed";
      default -> "unsettled";
    };
  }

  /**
   * Back to the data the first cell started with: each cell's client adds ~20 MB of keys, and
   * a long matrix would otherwise grow Redis past its memory limit (the kernel's OOM killer then
   * ends it, whatever the fault).
   */
  private void resetData() {
    // bounded: a pod that stopped answering after its cell must not hang the whole run
    java.time.Duration t = java.time.Duration.ofSeconds(30);
    Exec.run(lab.inClient(List.of("redis-cli", "-h", ip, "FLUSHALL")), t, Map.of());
    Exec.run(lab.inClient(List.of("redis-cli", "-h", ip, "DEBUG", "POPULATE", String.valueOf(POPULATE_MIB * 1024),
        "bulk", "1024")), t, Map.of());
  }

  /** A Redis pod on host-a with data in it, and the lab's snapshot with it running. */
  private void ensurePod() throws Exception {
    if (baseline != null && store.pod(POD).isPresent() && !labBroken) {
      return;
    }
    if (baseline != null || labBroken) {
      // the last cell broke an invariant, or the store gave the pod up: what is left of it was
      // counted against that cell; the next starts from a clean lab
      LOG.warn("chaos: the last cell left pod {} {}; bringing the lab up afresh", POD,
          labBroken ? "with an invariant broken" : "gone from the store");
      labBroken = false;
      String name = lab.config().name();
      store.close();
      Lab.down(name);
      lab = Lab.up(name, List.of("host-a", "host-b"), 4096);
      store = new MigrationStore(lab.config().stateDir());
      coordinator = LabHosts.coordinator(lab, store);
      Files.createDirectories(work);
      baseline = null;
    }
    if (store.pod(POD).isPresent()) {
      coordinator.deletePod(POD);
    }
    PodRecord p = coordinator.runPod("host-a", POD, List.of(new ContainerSpec(CONTAINER, DemoRunner.REDIS, List.of())), 1024);
    ip = p.spec().identity().ip();
    Path control = work.resolve("populate-" + cellNo);
    Process c = DemoRunner.startClient(lab, ip, control, POPULATE_MIB);
    DemoRunner.waitFor(control, s -> s.connected && s.acked >= 10, 120, "Redis to load " + POPULATE_MIB + " MiB");
    DemoRunner.stopClient(c, control, 60);
    baseline = LabSnapshot.of(lab, coordinator);
  }

  /** Faults set up before the migration starts; their undo goes into {@code heal}. */
  private void setUp(Cell cell, String target, Heal heal) throws IOException {
    LabConfig.HostEntry t = lab.config().host(target);
    switch (cell.fault()) {
      case PACKET_LOSS -> {
        for (String chain : List.of("INPUT", "OUTPUT")) {
          List<String> rule = List.of(chain, "-p", "tcp", "-m", "statistic", "--mode", "random", "--probability", "0.03",
              "-j", "DROP");
          Exec.checked(cmd(t, "iptables", "-A", rule));
          heal.add(() -> Exec.run(cmd(t, "iptables", "-D", rule)));
        }
      }
      case TARGET_DISK_FULL -> {
        Path dir = Files.createDirectories(t.stateDir().resolve("migrations"));
        Exec.checked("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "ferry-chaos-full", dir.toString());
        heal.addLast(() -> {
          if (!Exec.run("umount", dir.toString()).ok()) {
            Exec.run("umount", "-l", dir.toString());
          }
        });
      }
      default -> {
        // set up by the migration's own options, or struck later
      }
    }
  }

  private static List<String> cmd(LabConfig.HostEntry h, String tool, String op, List<String> rule) {
    List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", h.netns(), tool, op));
    c.addAll(rule);
    return c;
  }

  /** The migration as a user runs it: {@code ferry migrate} in a process of its own (so it can be killed). */
  private Process startMigration(Cell cell, String target, int n) throws IOException {
    // (killed by some faults: its temporary files go with the cell's work directory)
    Path tmp = Files.createDirectories(work.resolve("tmp"));
    List<String> c = new ArrayList<>(dev.ferry.runtime.JavaCommand.of(null, tmp, "dev.ferry.cli.Main",
        List.of("--lab=" + lab.config().name(), "migrate", POD, "--to", target, "--strategy", cell.strategy(),
            "--bandwidth", String.valueOf(BANDWIDTH_MBPS), "--allow-postcopy",
            "--json-report", work.resolve("report-" + n + ".json").toString())));
    if (cell.fault().agentFault != null) {
      c.addAll(List.of("--inject-fault", cell.fault().agentFault));
    }
    if (cell.fault() == Fault.PRE_HOOK_FAILS || cell.fault() == Fault.PRE_HOOK_HANGS) {
      Path hook = work.resolve(cell.fault().id + ".sh");
      Files.writeString(hook, cell.fault() == Fault.PRE_HOOK_FAILS ? "#!/bin/sh\necho refused >&2\nexit 1\n"
          : "#!/bin/sh\nexec sleep 600\n");
      Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
      c.addAll(List.of("--pre-hook", hook.toString(), "--hook-timeout", "2000"));
    }
    ProcessBuilder pb = new ProcessBuilder(c);
    pb.redirectInput(new File("/dev/null"));
    pb.redirectOutput(work.resolve("migrate-" + n + ".log").toFile());
    pb.redirectErrorStream(true);
    return pb.start();
  }

  /** Waits until the newest migration is at {@code phase} or past it; empty if it ended first. */
  private Optional<MigrationPhase> waitForPhase(long since, MigrationPhase phase, Process migration)
      throws InterruptedException {
    long deadline = System.currentTimeMillis() + 240_000;
    while (System.currentTimeMillis() < deadline && migration.isAlive()) {
      Optional<MigrationRecord> r = newestSince(since);
      if (r.isPresent()) {
        MigrationPhase p = r.get().phase();
        if (p.isFinal() || p == MigrationPhase.ROLLING_BACK) {
          return Optional.empty();
        }
        if (p.ordinal() >= phase.ordinal()) {
          return Optional.of(p);
        }
      }
      Thread.sleep(5);
    }
    return Optional.empty();
  }

  /** Strikes a timed fault; returns false if it could not (the thing to kill was gone already). */
  private boolean strike(Cell cell, String source, String target, Process migration, Heal heal) throws Exception {
    LabConfig.HostEntry s = lab.config().host(source);
    LabConfig.HostEntry t = lab.config().host(target);
    LOG.info("chaos: striking {}", cell);
    switch (cell.fault()) {
      case SOURCE_AGENT_KILL -> {
        return kill(lab.agentPid(s));
      }
      case TARGET_AGENT_KILL -> {
        return kill(lab.agentPid(t));
      }
      case COORDINATOR_KILL -> {
        migration.destroyForcibly();
        return true;
      }
      case SOURCE_CRIU_KILL -> {
        return killCriu(s);
      }
      case TARGET_CRIU_KILL -> {
        return killCriu(t);
      }
      case LINK_DOWN, LINK_FLAP -> {
        String port = "h-" + t.name();
        Exec.checked("ip", "-n", lab.config().bridgeNs(), "link", "set", port, "down");
        Runnable up = () -> Exec.run("ip", "-n", lab.config().bridgeNs(), "link", "set", port, "up");
        heal.add(up);
        Thread.sleep(cell.fault() == Fault.LINK_DOWN ? 20_000 : 7_000);
        up.run();
        return true;
      }
      case CANCEL_AT_COMMIT -> {
        newestSince(0).ifPresent(r -> store.requestCancel(r.id()));
        return true;
      }
      default -> throw new IllegalStateException(cell.fault() + " is not a timed fault");
    }
  }

  private static boolean kill(Optional<Long> pid) throws Exception {
    Optional<ProcessHandle> h = pid.flatMap(ProcessHandle::of);
    if (h.isEmpty()) {
      return false;
    }
    h.get().destroyForcibly();
    h.get().onExit().get(10, TimeUnit.SECONDS);
    return true;
  }

  /** Kills CRIU on {@code h} (the first seen within 3 s): its command line names the host's directory. */
  private static boolean killCriu(LabConfig.HostEntry h) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 3000;
    while (System.currentTimeMillis() < deadline) {
      for (String line : Exec.run("pgrep", "-af", "criu").stdout().lines().toList()) {
        if (line.contains(h.stateDir().toString()) && !line.contains("pgrep")) {
          Exec.run("kill", "-9", line.split(" ")[0]);
          return true;
        }
      }
      Thread.sleep(2);
    }
    return false;
  }

  /** The newest migration created at or after {@code since} (epoch ms). */
  private Optional<MigrationRecord> newestSince(long since) {
    return store.migrations().stream().filter(m -> m.createdAt() >= since - 1000)
        .max(java.util.Comparator.comparingLong(MigrationRecord::createdAt));
  }

  /** Recovers until the migration has ended and the pod runs (60 s at most). */
  private void awaitSettled(String migrationId) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (System.currentTimeMillis() < deadline) {
      coordinator.recover().forEach(l -> LOG.info("chaos: recovered {}", l));
      boolean ended = migrationId == null || store.migration(migrationId).map(m -> m.phase().isFinal()).orElse(true);
      if (ended && Invariants.copies(lab, POD, CONTAINER).containsValue("running")) {
        return;
      }
      Thread.sleep(500);
    }
  }

  /** Undo actions for what a cell set up, run once whatever happened. */
  private static final class Heal {
    private final java.util.Deque<Runnable> undo = new java.util.ArrayDeque<>();

    synchronized void add(Runnable r) {
      undo.push(r);
    }

    /** Runs after everything else (an unmount, once what it holds was cleaned up). */
    synchronized void addLast(Runnable r) {
      undo.addLast(r);
    }

    synchronized void run() {
      while (!undo.isEmpty()) {
        try {
          undo.pop().run();
        } catch (RuntimeException e) {
          LOG.warn("chaos: an undo failed: {}", e.getMessage());
        }
      }
    }
  }

  public Lab lab() {
    return lab;
  }

  @Override
  public void close() {
    store.close();
  }
}
