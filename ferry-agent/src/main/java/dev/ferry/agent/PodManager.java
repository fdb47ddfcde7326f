package dev.ferry.agent;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.PodSpec;
import dev.ferry.api.PodStatus;
import dev.ferry.api.VolumeSpec;
import dev.ferry.runtime.BundleBuilder;
import dev.ferry.runtime.ContainerRuntime;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.Netns;
import dev.ferry.runtime.OciConfig;
import dev.ferry.runtime.PodNetwork;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pods on this host: a sandbox (network namespace + pause container owning the pod's IPC and
 * UTS namespaces) plus app containers that join it.
 */
public final class PodManager {
  private static final Logger LOG = LoggerFactory.getLogger(PodManager.class);
  static final String PAUSE = "pause";

  private final AgentConfig config;
  private final ContainerRuntime runtime;
  private final PodStore store;
  /** gVisor's runsc for pods whose spec asks for it; null when this host has none usable. */
  private dev.ferry.runtime.RunscRuntime runsc;
  private String runscMissing = "this host has no runsc";

  public PodManager(AgentConfig config, ContainerRuntime runtime, PodStore store) {
    this.config = config;
    this.runtime = runtime;
    this.store = store;
  }

  /** This host's name. */
  public String host() {
    return config.host();
  }

  public PodStore store() {
    return store;
  }

  public ContainerRuntime runtime() {
    return runtime;
  }

  /** Adds runsc for pods run with runtime "runsc"; {@code missing} says why there is none when null. */
  public PodManager withRunsc(dev.ferry.runtime.RunscRuntime r, String missing) {
    this.runsc = r;
    if (missing != null) {
      this.runscMissing = missing;
    }
    return this;
  }

  /** The runtime of a pod's app containers, by its spec. */
  public ContainerRuntime runtimeFor(PodSpec spec) {
    return spec.runsc() ? runsc() : runtime;
  }

  /** The runtime of a pod of this host (runc for pods not recorded here). */
  public ContainerRuntime runtimeOf(String pod) {
    return store.find(pod).map(p -> runtimeFor(p.spec())).orElse(runtime);
  }

  /** This host's runsc, or a clear refusal. */
  public dev.ferry.runtime.RunscRuntime runsc() {
    if (runsc == null) {
      throw ApiException.conflict("host " + config.host() + " cannot run runsc pods: " + runscMissing);
    }
    return runsc;
  }

  public String containerId(String pod, String container) {
    return config.namePrefix() + "-" + pod + "-" + container;
  }

  public PodNetwork network(String pod) {
    return new PodNetwork(config.namePrefix() + "-" + pod, config.hostBridge());
  }

  /** Starts a pod with its identity. On any failure everything created is removed again. */
  public synchronized PodStatus run(PodSpec spec) {
    validate(spec);
    String name = spec.identity().name();
    if (store.find(name).isPresent()) {
      throw ApiException.conflict("pod '" + name + "' already exists on " + config.host());
    }
    checkCapacity(spec);
    LocalPod pod = new LocalPod(spec, "starting", null, false);
    store.save(pod);
    try {
      PodNetwork net = network(name);
      net.create();
      // (runsc) netstack takes the address from eth0 when the sandbox starts: it must be there first
      net.takeIdentity(spec.identity().ip(), spec.identity().prefixLength(), spec.identity().mac());
      long pausePid = startSandbox(spec);
      for (ContainerSpec c : spec.containers()) {
        Path bundle = store.bundle(name, c.name());
        BundleBuilder.buildApp(bundle, c);
        configureApp(bundle, spec, c, pausePid);
        runtimeFor(spec).run(containerId(name, c.name()), bundle);
      }
      if (spec.runsc()) {
        net.announceFromSandbox(spec.identity().ip()); // netstack holds the address now, not eth0
      } else {
        net.announce(spec.identity().ip());
      }
      store.save(pod.withState("running", null));
      LOG.info("pod {} running at {}", name, spec.identity().ip());
      return status(name);
    } catch (RuntimeException e) {
      LOG.warn("pod {} failed to start, removing it: {}", name, e.getMessage());
      destroy(name, spec);
      throw e;
    }
  }

  /** Creates the pause container in the pod's (existing) network namespace; returns its pid. */
  long startSandbox(PodSpec spec) {
    if (spec.runsc()) {
      runsc(); // refuses clearly where there is none
      return 0; // the gVisor sandbox of the app container is the pod's sandbox: it owns netstack, IPC and UTS
    }
    String name = spec.identity().name();
    Path bundle = store.bundle(name, PAUSE);
    String id = containerId(name, PAUSE);
    ContainerRuntime.ContainerStatus st = runtime.state(id);
    if (st.running()) {
      return st.pid(); // once per restore, inside the frozen window: one look, not two
    }
    runtime.destroy(id);
    BundleBuilder.buildPause(bundle);
    OciConfig.load(bundle)
        .namespaces(Netns.path(network(name).netns()).toString(), null, null)
        .hostname(name)
        .cgroupsPath(cgroupsPath(name, PAUSE))
        .save();
    runtime.run(id, bundle);
    return runtime.state(id).pid();
  }

  /**
   * The placeholder's app slots: one pause process per app container, in the sandbox's
   * namespaces and in a cgroup with the container's real limits (memory, CPU weight), so that
   * the blank pod holds the pod's resources while it waits. Removed once the pod is restored
   * (off the frozen path) or with the placeholder.
   */
  void startSlots(PodSpec spec, long pausePid) {
    if (spec.runsc()) {
      return; // a runsc restore starts a sandbox of its own: there is nothing to hold in its place
    }
    String name = spec.identity().name();
    for (ContainerSpec c : spec.containers()) {
      String id = slotId(name, c.name());
      if (runtime.state(id).running()) {
        continue;
      }
      runtime.destroy(id);
      Path bundle = store.podDir(name).resolve("slots").resolve(c.name());
      BundleBuilder.buildPause(bundle);
      OciConfig.load(bundle)
          .namespaces(Netns.path(network(name).netns()).toString(), "/proc/" + pausePid + "/ns/ipc",
              "/proc/" + pausePid + "/ns/uts")
          .hostname(null)
          .cgroupsPath(cgroupsPath(name, c.name() + ".slot"))
          .resources(spec.memoryLimitMiB() * 1024 * 1024, spec.cpuShares())
          .save();
      runtime.run(id, bundle);
    }
  }

  /** Removes the placeholder's app slots. Idempotent. */
  synchronized void removeSlots(String name, PodSpec spec) {
    for (ContainerSpec c : spec.containers()) {
      runtime.destroy(slotId(name, c.name()));
    }
    Files2.deleteTree(store.podDir(name).resolve("slots"));
  }

  /** Container id of the placeholder slot standing in for app container {@code container}. */
  public String slotId(String pod, String container) {
    return containerId(pod, container) + ".slot";
  }

  /** Points an app bundle at this host's sandbox of the pod: network, IPC, UTS and cgroup. */
  void configureApp(Path bundle, PodSpec spec, ContainerSpec c, long pausePid) {
    String name = spec.identity().name();
    if (spec.runsc()) {
      configureRunscApp(bundle, spec, c);
      return;
    }
    OciConfig.load(bundle)
        .namespaces(Netns.path(network(name).netns()).toString(),
            "/proc/" + pausePid + "/ns/ipc", "/proc/" + pausePid + "/ns/uts")
        .hostname(null)
        .cgroupsPath(cgroupsPath(name, c.name()))
        .resources(spec.memoryLimitMiB() * 1024 * 1024, spec.cpuShares())
        .save();
    mountVolumes(bundle, spec);
  }

  /**
   * A runsc app is its own sandbox in the pod's network namespace (runsc's netstack serves the
   * pod's IP from eth0 there); IPC and UTS are the sandbox's own.
   */
  private void configureRunscApp(Path bundle, PodSpec spec, ContainerSpec c) {
    String name = spec.identity().name();
    OciConfig.load(bundle)
        .namespaces(Netns.path(network(name).netns()).toString(), null, null)
        .hostname(name)
        .cgroupsPath(cgroupsPath(name, c.name()))
        .resources(spec.memoryLimitMiB() * 1024 * 1024, spec.cpuShares())
        .save();
  }

  /** Points the bundle's volume mounts at this host's directories (a moved bundle still names the source's). */
  private void mountVolumes(Path bundle, PodSpec spec) {
    if (spec.volumes().isEmpty()) {
      return;
    }
    OciConfig cfg = OciConfig.load(bundle);
    for (VolumeSpec v : spec.volumes()) {
      Path dir = "disk".equals(v.kind()) ? store.diskDir(v.name())
          : store.hostVolume(spec.identity().name(), spec.containers().get(0).name(), v.name());
      if ("disk".equals(v.kind()) && Files2.mountsUnder(dir).stream().noneMatch(m -> m.equals(dir.toString()))) {
        throw ApiException.conflict("disk '" + v.name() + "' is not attached to " + config.host());
      }
      try {
        Files.createDirectories(dir);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot create volume " + dir, e);
      }
      cfg.bindMount(dir.toString(), v.mountPath());
    }
    cfg.save();
  }

  private String cgroupsPath(String pod, String container) {
    return "/ferry/" + config.namePrefix() + "/" + pod + "-" + container;
  }

  public synchronized List<PodStatus> list() {
    List<PodStatus> out = new ArrayList<>();
    for (LocalPod p : store.all()) {
      out.add(status(p));
    }
    return out;
  }

  /** What keeps the pod's processes from moving (see {@link dev.ferry.runtime.Migratability}). */
  public List<String> migratability(String name) {
    LocalPod p = store.get(name);
    List<String> out = new java.util.ArrayList<>();
    if (p.spec().runsc()) {
      return out; // no CRIU: the sandbox's kernel holds every file, lock and device its processes use
    }
    for (ContainerSpec c : p.spec().containers()) {
      var st = runtime.state(containerId(name, c.name()));
      if (!st.running()) {
        continue;
      }
      try {
        dev.ferry.runtime.Migratability.problems(st.pid()).forEach(x -> out.add("container " + c.name() + ": " + x));
      } catch (java.io.IOException e) {
        out.add("container " + c.name() + ": cannot inspect its processes: " + e.getMessage());
      }
    }
    return out;
  }

  public synchronized PodStatus status(String name) {
    return status(store.get(name));
  }

  private PodStatus status(LocalPod p) {
    List<PodStatus.ContainerState> cs = new ArrayList<>();
    String name = p.name();
    if (!p.spec().runsc()) {
      var pause = runtime.state(containerId(name, PAUSE));
      cs.add(new PodStatus.ContainerState(PAUSE, pause.id(), pause.status(), pause.pid(), rss(pause.pid())));
    }
    for (ContainerSpec c : p.spec().containers()) {
      var s = runscSafe(p.spec()).state(containerId(name, c.name()));
      cs.add(new PodStatus.ContainerState(c.name(), s.id(), s.status(), s.pid(), rss(s.pid())));
    }
    return new PodStatus(p.spec(), config.host(), p.state(), cs);
  }

  /** The pod's runtime; for a runsc pod on a host without runsc, one that knows no containers. */
  private ContainerRuntime runscSafe(PodSpec spec) {
    return spec.runsc() && runsc == null ? runtime : runtimeFor(spec);
  }

  /** Resident memory of a process and its descendants, from /proc (0 if gone). */
  static long rss(long pid) {
    if (pid <= 0) {
      return 0;
    }
    return ProcessHandle.of(pid).map(p -> java.util.stream.Stream.concat(java.util.stream.Stream.of(p), p.descendants())
        .mapToLong(h -> vmRss(h.pid())).sum()).orElse(0L);
  }

  private static long vmRss(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
        }
      }
    } catch (IOException | NumberFormatException e) {
      // the process ended meanwhile
    }
    return 0;
  }

  /** The tail of a container's log (its stdout and stderr), at most {@code maxBytes}. */
  public String logs(String name, String container, int maxBytes) {
    LocalPod p = store.get(name);
    String c = container != null ? container : p.spec().containers().get(0).name();
    if (p.spec().containers().stream().noneMatch(x -> x.name().equals(c))) {
      throw ApiException.notFound("pod '" + name + "' has no container '" + c + "'");
    }
    Path log = BundleBuilder.logFile(store.bundle(name, c), c);
    try {
      if (!Files.exists(log)) {
        return "";
      }
      byte[] all = Files.readAllBytes(log);
      int from = Math.max(0, all.length - maxBytes);
      return new String(all, from, all.length - from);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Deletes a pod that is not migrating. */
  public synchronized void delete(String name) {
    LocalPod p = store.get(name);
    if (p.migrationId() != null) {
      throw ApiException.conflict("pod '" + name + "' is part of migration " + p.migrationId() + "; cancel or finish it first");
    }
    destroy(name, p.spec());
  }

  /** Removes every trace of a pod on this host: containers, sandbox, network, files. Idempotent. */
  synchronized void destroy(String name, PodSpec spec) {
    for (ContainerSpec c : spec.containers()) {
      runscSafe(spec).destroy(containerId(name, c.name()));
      runtime.destroy(slotId(name, c.name()));
    }
    runtime.destroy(containerId(name, PAUSE));
    network(name).destroy();
    Files2.deleteTree(store.podDir(name));
  }

  public long reservedMiB() {
    return store.all().stream().mapToLong(p -> p.spec().memoryLimitMiB()).sum();
  }

  void checkCapacity(PodSpec spec) {
    long free = config.memoryCapacityMiB() - reservedMiB();
    if (spec.memoryLimitMiB() > free) {
      throw ApiException.conflict("host " + config.host() + " has " + free + " MiB free of " + config.memoryCapacityMiB()
          + " MiB, pod '" + spec.identity().name() + "' needs " + spec.memoryLimitMiB() + " MiB");
    }
  }

  static void validate(PodSpec spec) {
    if (spec == null || spec.identity() == null) {
      throw ApiException.badRequest("pod spec without identity");
    }
    Names.check("pod", spec.identity().name());
    if (spec.containers().isEmpty()) {
      throw ApiException.badRequest("pod '" + spec.identity().name() + "' has no containers");
    }
    Set<String> seen = new HashSet<>();
    for (VolumeSpec v : spec.volumes()) {
      Names.check("volume", v.name());
      if (!v.mountPath().matches("(/[A-Za-z0-9._-]+)+") || !seen.add("volume " + v.name())) {
        throw ApiException.badRequest("volume '" + v.name() + "' at '" + v.mountPath() + "': names must be unique and"
            + " paths plain absolute paths");
      }
    }
    for (ContainerSpec c : spec.containers()) {
      Names.check("container", c.name());
      if (c.name().equals(PAUSE)) {
        throw ApiException.badRequest("container name 'pause' is reserved for the pod sandbox");
      }
      if (!seen.add(c.name())) {
        throw ApiException.badRequest("container name '" + c.name() + "' appears twice");
      }
      if (c.args().isEmpty()) {
        throw ApiException.badRequest("container '" + c.name() + "' has no program");
      }
    }
    if (spec.runsc() && spec.containers().size() != 1) {
      throw ApiException.badRequest("a runsc pod is one gVisor sandbox with one app container; pod '"
          + spec.identity().name() + "' has " + spec.containers().size());
    }
    if (!List.of(PodSpec.RUNC, PodSpec.RUNSC).contains(spec.runtime())) {
      throw ApiException.badRequest("unknown runtime '" + spec.runtime() + "'; use runc or runsc");
    }
    if (spec.memoryLimitMiB() < 16 || spec.memoryLimitMiB() > 1 << 20) {
      throw ApiException.badRequest("memory limit " + spec.memoryLimitMiB() + " MiB is out of range (16 MiB .. 1 TiB)");
    }
  }
}
