package dev.ferry.migration;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.agent.AgentClient;
import dev.ferry.api.ContainerSpec;
import dev.ferry.api.HostInfo;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.api.PodSpec;
import dev.ferry.api.PodStatus;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * The embedded coordinator: owns the durable record of pods, identities and migrations, and
 * drives migrations through the agents. The same state machine a cluster controller would
 * drive; this one runs inside the CLI process.
 */
public final class Coordinator {
  private static final Logger LOG = LoggerFactory.getLogger(Coordinator.class);
  /** Strategies this coordinator can drive. */
  public static final List<String> STRATEGIES = List.of("auto", "cold", "precopy", "postcopy", "hybrid");
  /**
   * Faults tests and {@code ferry chaos} inject: a corrupted image, the target or the source
   * agent dying as the frozen round's transfer starts, a frozen transfer held back 3 s (time for
   * a test to cut the link while the pod is frozen), the transfer's connection reset once, and
   * an image truncated on the target after it arrived (its restore fails), and the target
   * refusing the identity at the hand-over (after its restore was readied and started ahead).
   */
  private static final Set<String> KNOWN_FAULTS = Set.of("corrupt-image-in-transit", "target-agent-crash-in-transfer",
      "source-agent-crash-in-transfer", "stall-frozen-transfer", "transfer-connection-drop",
      "truncate-received-image", "refuse-identity");

  private final MigrationStore store;
  private final HostDirectory hosts;
  private final String podSubnet;
  private final int prefixLength;
  private final Ipam ipam;
  private final Capacity capacity;
  private final Services services;
  private final Disks disks;
  private final HookRunner hookRunner = new HookRunner();
  private final PodLifecycle lifecycle;

  /**
   * @param podSubnet first three octets pods get addresses from, e.g. "10.77.1."
   * @param prefixLength prefix length of the network the pods live on
   */
  public Coordinator(MigrationStore store, HostDirectory hosts, String podSubnet, int prefixLength) {
    this(store, hosts, podSubnet, prefixLength, ServiceNetwork.NONE);
  }

  /** @param serviceNetwork where service VIPs are served */
  public Coordinator(MigrationStore store, HostDirectory hosts, String podSubnet, int prefixLength,
      ServiceNetwork serviceNetwork) {
    this(store, hosts, podSubnet, prefixLength, serviceNetwork, DiskBackend.NONE);
  }

  /**
   * @param serviceNetwork where service VIPs are served
   * @param diskBackend where network disks live and how they attach to hosts
   */
  public Coordinator(MigrationStore store, HostDirectory hosts, String podSubnet, int prefixLength,
      ServiceNetwork serviceNetwork, DiskBackend diskBackend) {
    this.store = store;
    this.hosts = hosts;
    this.podSubnet = podSubnet;
    this.prefixLength = prefixLength;
    this.ipam = new Ipam(store);
    this.capacity = new Capacity(store);
    this.services = new Services(store, ipam, serviceNetwork);
    this.disks = new Disks(store, diskBackend);
    this.lifecycle = new PodLifecycle(store, hosts, podSubnet, prefixLength, ipam, capacity, services, disks);
  }

  public Disks disks() {
    return disks;
  }

  public Ipam ipam() {
    return ipam;
  }

  public Capacity capacity() {
    return capacity;
  }

  public Services services() {
    return services;
  }

  /** Publishes a running pod behind a new service VIP (served by the kernel) on {@code port}. */
  public Services.Service createService(String name, String pod, int port) {
    PodRecord p = requirePod(pod);
    if (!"running".equals(p.state())) {
      throw new IllegalStateException("pod '" + pod + "' is " + p.state() + "; publish it once it runs");
    }
    return services.create(name, pod, p.spec().identity().ip(), p.host(), port);
  }

  public MigrationStore store() {
    return store;
  }

  /** A pod as recorded, with what its host's agent says now (null when unreachable). */
  public record PodView(PodRecord record, PodStatus status, String problem) {}

  /** Runs a new pod on {@code host} with a fresh identity (UID, IP, MAC) from the lab's range. */
  public PodRecord runPod(String host, String name, List<ContainerSpec> containers, long memoryMiB) {
    return runPod(host, name, containers, memoryMiB, 0);
  }

  /**
   * Runs a new pod; it reserves a pod slot and its memory on {@code host} first, and leases its
   * IP from the IPAM.
   *
   * @param cpuShares relative CPU weight per container (cgroup), 0 for the runtime's default
   */
  public PodRecord runPod(String host, String name, List<ContainerSpec> containers, long memoryMiB, long cpuShares) {
    return runPod(host, name, containers, memoryMiB, cpuShares, List.of());
  }

  /**
   * Runs a new pod with volumes: host volumes are created empty on the host (and move with the
   * pod), network disks are attached to the host first (each to one pod, on one host).
   */
  public PodRecord runPod(String host, String name, List<ContainerSpec> containers, long memoryMiB, long cpuShares,
      List<dev.ferry.api.VolumeSpec> volumes) {
    requireHost(host);
    return lifecycle.run(host, name, containers, memoryMiB, cpuShares, volumes);
  }

  /**
   * Runs a new pod on a given runtime ("runc" or "runsc"); {@code drain} (runsc) is the command
   * run inside the pod before its checkpoint to close its clients' connections.
   */
  public PodRecord runPod(String host, String name, List<ContainerSpec> containers, long memoryMiB, long cpuShares,
      List<dev.ferry.api.VolumeSpec> volumes, String runtime, List<String> drain) {
    requireHost(host);
    return lifecycle.run(host, name, containers, memoryMiB, cpuShares, volumes, runtime, drain);
  }

  /** Deletes a pod that is not migrating: its containers, services, disks' attachment, address and reservation. */
  public void deletePod(String name) {
    lifecycle.delete(requirePod(name));
  }

  public List<PodView> pods() {
    List<PodView> out = new ArrayList<>();
    for (PodRecord r : store.pods()) {
      try (AgentClient agent = hosts.connect(r.host())) {
        out.add(new PodView(r, agent.pod(r.name()), null));
      } catch (RuntimeException e) {
        out.add(new PodView(r, null, e.getMessage()));
      }
    }
    return out;
  }

  public String logs(String pod, String container) {
    PodRecord p = requirePod(pod);
    try (AgentClient agent = hosts.connect(p.host())) {
      return agent.logs(pod, container);
    }
  }

  public List<MigrationRecord> migrations() {
    return store.migrations();
  }

  /**
   * Migrates a pod. Everything that can be checked without side effects is checked first;
   * a bad request changes nothing. Returns the report of a successful migration; throws
   * {@link MigrationFailedException} (with the report) when it was rolled back or failed.
   */
  public MigrationReport migrate(MigrationOptions requested, ProgressListener progress) {
    return migrate(requested, HookSpec.Hooks.NONE, progress);
  }

  /** Migrates a pod, calling {@code hooks} before (admission) and after the identity hand-over. */
  public MigrationReport migrate(MigrationOptions requested, HookSpec.Hooks hooks, ProgressListener progress) {
    PodRecord pod = precheck(requested);
    Plan plan = plan(requested, pod);
    MigrationOptions o = requested.withStrategy(plan.choice().strategy());
    if (!store.compareAndSetPodState(pod.name(), "running", "migrating")) {
      throw new IllegalStateException("pod '" + pod.name() + "' is being migrated by another ferry process; see: ferry status");
    }
    String id = newMigrationId();
    long t0 = System.currentTimeMillis();
    MDC.put("migration", id);
    store.insertMigration(new MigrationRecord(id, pod.name(), pod.host(), o.targetHost(), o.strategy(),
        MigrationPhase.PENDING, false, ProcessHandle.current().pid(), t0, t0, null, null));
    if (hooks.pre() != null || hooks.post() != null) {
      store.setHooks(id, hooks.toJson());
    }
    MigrationReport report = newReport(id, pod, o);
    report.strategyRequested = requested.strategy();
    report.strategyReason = plan.choice().reason();
    report.predictedFrozenMs = plan.choice().predictedFrozenMs();
    report.maxFreezeMs = requested.maxFreezeMs() > 0 ? requested.maxFreezeMs() : null;
    report.podMemoryBytes = plan.memoryBytes();
    if (!plan.choice().budgetMet()) {
      LOG.warn("{}", plan.choice().reason());
    }
    progress.phase(id, MigrationPhase.PENDING, "pre-checks passed, migration " + id + " recorded; " + plan.choice().reason());
    try (AgentClient source = hosts.connect(pod.host()); AgentClient target = hosts.connect(o.targetHost())) {
      report.runtime = String.valueOf(source.info().capabilities().getOrDefault("criuVersion", "?"));
      report.runtime = "runc+criu-" + report.runtime;
      report.transport = source.info().peerTls() && target.info().peerTls() ? "mutual TLS" : "plain TCP";
      if (pod.spec().runsc()) {
        report.runtime = PodSpec.RUNSC;
        report.runtimeVersion = String.valueOf(source.info().capabilities().getOrDefault("runscVersion", "?"));
        report.tcpConnectionNote = RUNSC_TCP_NOTE;
      }
      HandoverSteps handover = handover(id, pod, o.targetHost(), hooks, report);
      MigrationRun m = new MigrationRun(id, pod, o, source, target, store, progress, report, t0).handover(handover);
      try {
        m.runForward();
      } catch (MigrationRun.FinishLaterException e) {
        return finishLater(id, pod, e, report, t0);
      } catch (Exception e) {
        return rolledBack(id, pod, o, m, e, report, t0, source);
      }
      try {
        m.awaitPages();
      } catch (MigrationRun.FinishLaterException e) {
        return finishLater(id, pod, e, report, t0);
      } catch (MigrationRun.PodLostException e) {
        return podLost(id, pod, o, e, report, t0, source, target);
      }
      try {
        m.cleanup();
        store.setPhase(id, MigrationPhase.SUCCEEDED);
      } catch (RuntimeException e) {
        report.error = "migrated, but removing the source copy failed (recovery retries it): " + e.getMessage();
        store.setError(id, report.error);
      }
      store.setPodState(pod.name(), "running");
      report.outcome = "migrated";
      fillAfter(report, target, pod.name());
      report.totalMs = System.currentTimeMillis() - t0;
      progress.phase(id, MigrationPhase.SUCCEEDED, "pod " + pod.name() + " runs on " + o.targetHost());
      store.setReport(id, Json.write(report));
      try {
        handover.refreshVip();
      } catch (RuntimeException e) {
        LOG.warn("the VIP rules of pod {} still name {}: {}", pod.name(), pod.host(), e.getMessage());
      }
      try {
        store.stepStatus(id, "post-hook", "started");
        handover.postHook();
        store.stepStatus(id, "post-hook", "done");
      } catch (HandoverSteps.HookFailedException e) {
        store.stepStatus(id, "post-hook", "failed");
        return movedBack(pod, o, e, report, progress);
      } finally {
        report.totalMs = System.currentTimeMillis() - t0;
        store.setReport(id, Json.write(report));
      }
      return report;
    } finally {
      MDC.remove("migration");
    }
  }

  /**
   * The post-migration hook failed under "abort" after the commit point: the pod may have
   * acknowledged writes on the target, so a rollback would lose them; it is moved back to its
   * source by a second migration instead, with everything it holds.
   */
  private MigrationReport movedBack(PodRecord pod, MigrationOptions o, RuntimeException e, MigrationReport report,
      ProgressListener progress) {
    LOG.warn("{}; moving pod {} back to {}", e.getMessage(), pod.name(), pod.host());
    progress.phase(report.migrationId, MigrationPhase.ROLLING_BACK, e.getMessage() + "; moving the pod back to " + pod.host());
    String id = report.migrationId;
    try {
      MigrationReport back = migrate(new MigrationOptions(pod.name(), pod.host(), "cold", List.of(), o.bandwidthMBps()),
          HookSpec.Hooks.NONE, progress);
      report.outcome = "rolled-back";
      report.ipAfter = back.ipAfter;
      report.uidAfter = back.uidAfter;
      report.error = e.getMessage() + "; past the commit point the pod may have served clients on " + o.targetHost()
          + ", so it was moved back to " + pod.host() + " by migration " + back.migrationId + " with all it acknowledged";
    } catch (RuntimeException back) {
      report.error = e.getMessage() + "; moving the pod back to " + pod.host() + " failed (" + back.getMessage()
          + "): it runs on " + o.targetHost();
    } finally {
      MDC.put("migration", id);
    }
    store.setError(id, report.error);
    throw new MigrationFailedException("migration " + id + " of pod " + pod.name() + ": " + report.error, report);
  }

  /** Post-copy failed after the commit point: the copy on the target is stopped, not left corrupt. */
  /**
   * Past the commit point a host did not answer: the migration is left committed and unfinished
   * (its phase is not final), for the next recovery to finish once the host is back. The pod's
   * data is on the target; nothing is rolled back or removed.
   */
  private MigrationReport finishLater(String id, PodRecord pod, RuntimeException e, MigrationReport report, long t0) {
    LOG.error("{}", e.getMessage());
    report.outcome = "committed";
    report.error = e.getMessage() + "; the migration is committed: the next ferry command on this lab finishes it";
    report.totalMs = System.currentTimeMillis() - t0;
    store.setError(id, report.error);
    store.setReport(id, Json.write(report));
    store.setOwner(id, 0); // nobody drives it now: any recovery, also in this process, takes it over
    throw new MigrationFailedException("migration " + id + " of pod " + pod.name() + ": " + report.error, report);
  }

  private MigrationReport podLost(String id, PodRecord pod, MigrationOptions o, RuntimeException e, MigrationReport report,
      long t0, AgentClient source, AgentClient target) {
    LOG.error("{}", e.getMessage());
    for (Runnable r : List.<Runnable>of(() -> target.step(id, "target", "abort", java.util.Map.of("pod", pod.name())),
        () -> target.deletePod(pod.name()), () -> source.step(id, "source", "finish", java.util.Map.of("pod", pod.name())))) {
      try {
        r.run();
      } catch (RuntimeException ignored) {
        // best effort: what is left is what the error below says
      }
    }
    store.deletePod(pod.name()); // the pod is gone: its identity is free again
    ipam.release(Ipam.podOwner(pod.name()));
    capacity.release(Capacity.podOwner(pod.name()));
    report.outcome = "failed";
    report.error = e.getMessage() + "; the pod was stopped and removed (it would run with zero-filled memory), its identity released";
    report.totalMs = System.currentTimeMillis() - t0;
    store.setPhase(id, MigrationPhase.FAILED);
    store.setError(id, report.error);
    store.setReport(id, Json.write(report));
    throw new MigrationFailedException("migration " + id + " of pod " + pod.name() + ": " + report.error, report);
  }

  private MigrationReport rolledBack(String id, PodRecord pod, MigrationOptions o, MigrationRun m, Exception e,
      MigrationReport report, long t0, AgentClient source) {
    Throwable cause = e.getCause() != null && e instanceof MigrationRun.StepFailedException ? e.getCause() : e;
    String where = e instanceof MigrationRun.StepFailedException sf
        ? "phase " + sf.phase.displayName() + " (step " + sf.step + ")" : "an unknown step";
    LOG.error("failed in {}: {}", where, cause.getMessage());
    MigrationRun.RollbackResult rb = m.rollback();
    report.totalMs = System.currentTimeMillis() - t0;
    String what;
    if (rb.sourceResumed()) {
      store.setPhase(id, MigrationPhase.ROLLED_BACK);
      store.setPodState(pod.name(), "running");
      report.outcome = "rolled-back";
      what = "rolled back: pod " + pod.name() + " runs on " + pod.host() + " as before, with its IP " + pod.spec().identity().ip()
          + (rb.problems().isEmpty() ? "" : "; left for the target's agent to remove when it restarts: " + rb.problems());
      fillAfter(report, source, pod.name());
    } else {
      List<String> problems = rb.problems();
      report.outcome = "failed";
      what = "rollback incomplete (" + String.join("; ", problems) + "); recovery retries when the hosts answer"
          + " (any ferry command on this lab runs it)";
      store.setOwner(id, 0); // nobody drives it any more: the next recovery, in any process, takes it
    }
    report.error = "failed in " + where + ": " + cause.getMessage() + "\n" + what;
    store.setError(id, report.error);
    store.setReport(id, Json.write(report));
    m.reportJson();
    throw new MigrationFailedException("migration " + id + " of pod " + pod.name() + " to " + o.targetHost() + " " + report.error,
        report);
  }

  /** What will run, and why. */
  private record Plan(StrategyChooser.Choice choice, long memoryBytes) {}

  /** Resolves "auto" (and predicts the freeze of an explicit strategy, for the report). */
  private Plan plan(MigrationOptions o, PodRecord pod) {
    long memory;
    boolean uffd;
    try (AgentClient source = hosts.connect(pod.host()); AgentClient target = hosts.connect(o.targetHost())) {
      memory = source.pod(pod.name()).appRssBytes();
      // post-copy needs userfaultfd on the target and (for now) one app container
      uffd = Boolean.TRUE.equals(target.info().capabilities().get("userfaultfd")) && pod.spec().containers().size() == 1;
    }
    if (pod.spec().runsc()) {
      long predicted = StrategyChooser.predictColdMs(memory, false);
      return new Plan(new StrategyChooser.Choice("cold", predicted, "auto".equals(o.strategy())
          ? "cold: the pod runs on runsc, which can only checkpoint a whole sandbox" : "cold as asked", true), memory);
    }
    if ("auto".equals(o.strategy())) {
      return new Plan(StrategyChooser.choose(memory, o.maxFreezeMs(), o.allowPostcopy(), uffd, o.onBudgetMiss()), memory);
    }
    long predicted = switch (o.strategy()) {
      case "postcopy", "hybrid" -> StrategyChooser.predictPostcopyMs(memory);
      case "precopy" -> uffd ? StrategyChooser.predictPumpedPrecopyMs(memory, memory / 50)
          : StrategyChooser.predictPrecopyMs(memory, memory / 50);
      default -> StrategyChooser.predictColdMs(memory, uffd);
    };
    return new Plan(new StrategyChooser.Choice(o.strategy(), predicted, o.strategy() + " as asked", true), memory);
  }

  /** Why a runsc pod's clients lose their connections (the report's tcpConnectionNote). */
  static final String RUNSC_TCP_NOTE = "runsc (gVisor) cannot save established TCP connections (\"endpoint cannot be"
      + " saved in connected state\"); the pod's drain command closed them before the checkpoint, and clients reconnect"
      + " to the same IP on the target";

  /**
   * A runsc pod moves only to a host with a usable runsc, only cold (runsc has no pre-dump or
   * lazy pages), and never to another runtime. Refused before anything is prepared.
   */
  static void checkRuntime(MigrationOptions o, PodRecord pod, java.util.Map<String, Object> targetCapabilities) {
    String runtime = pod.spec().runtime();
    if (o.runtime() != null && !o.runtime().equals(runtime)) {
      throw new IllegalArgumentException("pod '" + pod.name() + "' runs on " + runtime + ", not " + o.runtime()
          + ": migrating between runtimes is not possible (a " + runtime + " checkpoint restores only on " + runtime + ")");
    }
    if (!pod.spec().runsc()) {
      return;
    }
    if (!Set.of("cold", "auto").contains(o.strategy())) {
      throw new IllegalArgumentException("pod '" + pod.name() + "' runs on runsc, which can only checkpoint a whole"
          + " sandbox (no pre-dump, incremental dumps or lazy pages): " + o.strategy() + " is impossible; use --strategy cold");
    }
    if (targetCapabilities != null && !Boolean.TRUE.equals(targetCapabilities.get("runscUsable"))) {
      throw new IllegalStateException("target host " + o.targetHost() + " cannot run runsc pods: "
          + targetCapabilities.getOrDefault("runscUnusableReason", "it has no runsc") + "; the pod stays where it is");
    }
  }

  /** Checks everything that can be checked without changing anything. */
  private PodRecord precheck(MigrationOptions o) {
    PodRecord pod = requirePod(o.pod());
    requireHost(o.targetHost());
    checkRuntime(o, pod, null);
    if (!STRATEGIES.contains(o.strategy())) {
      throw new IllegalArgumentException("strategy '" + o.strategy() + "' is not available; use one of " + STRATEGIES);
    }
    if (Set.of("postcopy", "hybrid").contains(o.strategy()) && pod.spec().containers().size() != 1) {
      throw new IllegalArgumentException(o.strategy() + " moves pods with one app container for now; use --strategy cold"
          + " or precopy");
    }
    for (String f : o.faults()) {
      if (!KNOWN_FAULTS.contains(f)) {
        throw new IllegalArgumentException("unknown fault '" + f + "'; known: " + KNOWN_FAULTS);
      }
    }
    if (pod.host().equals(o.targetHost())) {
      throw new IllegalArgumentException("pod '" + pod.name() + "' already runs on " + pod.host() + "; choose another target host");
    }
    if (!"running".equals(pod.state())) {
      throw new IllegalStateException("pod '" + pod.name() + "' is " + pod.state() + "; only a running pod can be migrated");
    }
    try (AgentClient source = hosts.connect(pod.host()); AgentClient target = hosts.connect(o.targetHost())) {
      PodStatus st = source.pod(pod.name());
      if (!st.running()) {
        throw new IllegalStateException("pod '" + pod.name() + "' is not running on " + pod.host() + " (" + st.containers() + ")");
      }
      List<String> unmovable = source.migratability(pod.name());
      if (!unmovable.isEmpty()) {
        throw new IllegalStateException("pod '" + pod.name() + "' cannot be migrated; nothing was frozen or prepared:\n  "
            + String.join("\n  ", unmovable));
      }
      HostInfo ti;
      try {
        ti = target.info();
      } catch (AgentClient.AgentException e) {
        throw new IllegalStateException("target host " + o.targetHost() + " is not reachable: " + e.getMessage());
      }
      checkRuntime(o, pod, ti.capabilities());
      if (Set.of("postcopy", "hybrid").contains(o.strategy())
          && !Boolean.TRUE.equals(ti.capabilities().get("userfaultfd"))) {
        throw new IllegalStateException("target host " + o.targetHost() + " has no userfaultfd: " + o.strategy()
            + " is impossible there; use --strategy cold or precopy");
      }
      if (!Boolean.TRUE.equals(ti.capabilities().get("criuUsable"))) {
        throw new IllegalStateException("target host " + o.targetHost() + " cannot restore pods: " + ti.capabilities().get("unusableReason"));
      }
      long free = ti.memoryCapacityMiB() - ti.memoryReservedMiB();
      if (pod.spec().memoryLimitMiB() > free) {
        throw new IllegalStateException("target host " + o.targetHost() + " has " + free + " MiB free, pod '" + pod.name()
            + "' needs " + pod.spec().memoryLimitMiB() + " MiB");
      }
      // CRIU's CPU check; a runsc restore checks the CPU features itself
      JsonNode cpu = pod.spec().runsc() ? null : target.cpuinfoCheck(source.cpuinfo());
      if (cpu != null && !cpu.path("compatible").asBoolean()) {
        throw new IllegalStateException("CPU of " + o.targetHost() + " lacks features the pod may use on " + pod.host() + ": "
            + cpu.path("message").asText());
      }
    }
    return pod;
  }

  /**
   * Finishes or rolls back migrations whose driving process died: committed ones are
   * finished (source copy removed), others rolled back. Returns what was done.
   */
  public List<String> recover() {
    List<String> done = new ArrayList<>();
    for (MigrationRecord r : store.migrations()) {
      if (r.phase().isFinal() || ProcessHandle.of(r.ownerPid()).map(ProcessHandle::isAlive).orElse(false)) {
        continue; // ended, or driven right now by a live process (maybe this one)
      }
      MDC.put("migration", r.id());
      store.setOwner(r.id(), ProcessHandle.current().pid());
      PodRecord pod = store.pod(r.pod()).orElse(null);
      if (pod == null) {
        store.setPhase(r.id(), MigrationPhase.FAILED);
        continue;
      }
      MigrationReport report = new MigrationReport();
      try (AgentClient source = hosts.connect(r.source()); AgentClient target = hosts.connect(r.target())) {
        MigrationRun m = new MigrationRun(r.id(), pod, new MigrationOptions(r.pod(), r.target(), r.strategy(), List.of()),
            source, target, store, ProgressListener.NONE, report, r.createdAt())
            .handover(handover(r.id(), pod, r.target(), HookSpec.Hooks.fromJson(store.hooks(r.id())), report));
        boolean rollBack = !r.committed();
        if (r.committed()) {
          try {
            m.finishCommitted();
            store.setPhase(r.id(), MigrationPhase.SUCCEEDED);
            store.setPodState(r.pod(), "running");
            done.add(r.id() + ": was committed; finished (pod open on " + r.target() + ", source copy removed)");
          } catch (MigrationRun.TargetCopyDiedException e) {
            m.takeBackCommit(); // it never served anyone: the source's copy is the pod
            rollBack = true;
          }
        }
        if (rollBack) {
          MigrationRun.RollbackResult rb = m.rollback();
          List<String> problems = rb.problems();
          if (rb.sourceResumed()) {
            store.setPhase(r.id(), MigrationPhase.ROLLED_BACK);
            store.setPodState(r.pod(), "running");
            store.setError(r.id(), (r.error() == null ? "interrupted" : r.error()) + "\nrecovered: rolled back, source resumed");
            done.add(r.id() + ": was interrupted before its commit point; rolled back, pod runs on " + r.source());
          } else {
            done.add(r.id() + ": rollback still incomplete: " + problems);
          }
        }
      } catch (RuntimeException e) {
        store.setOwner(r.id(), 0); // left for the next recovery, whichever process runs it
        done.add(r.id() + ": recovery failed: " + e.getMessage());
      } finally {
        MDC.remove("migration");
      }
    }
    return done;
  }

  private HandoverSteps handover(String id, PodRecord pod, String target, HookSpec.Hooks hooks, MigrationReport report) {
    return new HandoverSteps(id, pod, target, new HandoverSteps.Context(store, ipam, capacity, services, disks, podSubnet,
        hooks,
        hookRunner), report);
  }

  private void fillAfter(MigrationReport report, AgentClient host, String pod) {
    try {
      PodStatus st = host.pod(pod);
      report.ipAfter = st.spec().identity().ip();
      report.uidAfter = st.spec().identity().uid();
    } catch (RuntimeException e) {
      LOG.warn("cannot read the pod's identity on {}: {}", host.host(), e.getMessage());
    }
  }

  private MigrationReport newReport(String id, PodRecord pod, MigrationOptions o) {
    MigrationReport r = new MigrationReport();
    r.migrationId = id;
    r.strategy = o.strategy();
    r.pod = pod.name();
    r.sourceHost = pod.host();
    r.targetHost = o.targetHost();
    r.ipBefore = pod.spec().identity().ip();
    r.uidBefore = pod.spec().identity().uid();
    r.precopyRounds = 0;
    return r;
  }

  private PodRecord requirePod(String name) {
    return store.pod(name).orElseThrow(() -> new IllegalArgumentException("unknown pod '" + name + "'; see: ferry ps"));
  }

  private void requireHost(String host) {
    if (!hosts.hosts().contains(host)) {
      throw new IllegalArgumentException("unknown host '" + host + "'; hosts: " + hosts.hosts());
    }
  }

  /** A locally administered MAC derived from the IP: unique while the IP is. */
  static String macFor(String ip) {
    String[] o = ip.split("\\.");
    return String.format("02:fe:%02x:%02x:%02x:%02x", Integer.parseInt(o[0]), Integer.parseInt(o[1]),
        Integer.parseInt(o[2]), Integer.parseInt(o[3]));
  }

  private static String newMigrationId() {
    return "m-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")) + "-"
        + String.format("%04x", ThreadLocalRandom.current().nextInt(0x10000));
  }
}
