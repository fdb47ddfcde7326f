package dev.ferry.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** {@link ContainerRuntime} on runc, with CRIU for checkpoint and restore. */
public final class RuncRuntime implements ContainerRuntime {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(RuncRuntime.class);
  private static final Duration CRIU_TIMEOUT = Duration.ofMinutes(10);
  private final String criu;
  private final Map<String, String> criuEnv;
  /** Where runc's masked directories are kept out of CRIU's archives; null: they are not. */
  private final MaskedMounts masked;

  /**
   * @param criu CRIU binary runc should use
   * @param criuEnv extra environment for CRIU (see {@link HostCapabilities#criuEnv()})
   */
  public RuncRuntime(String criu, Map<String, String> criuEnv) {
    this(criu, criuEnv, null);
  }

  private RuncRuntime(String criu, Map<String, String> criuEnv, MaskedMounts masked) {
    this.criu = criu;
    this.criuEnv = Map.copyOf(criuEnv);
    this.masked = masked;
  }

  /**
   * The same runtime, keeping the masked directories of the containers it runs from now on out
   * of CRIU's archives ({@link MaskedMounts}).
   */
  public RuncRuntime withMaskedMounts(MaskedMounts m) {
    return new RuncRuntime(criu, criuEnv, m);
  }

  @Override
  public String name() {
    return "runc+criu";
  }

  @Override
  public void run(String id, Path bundle) {
    if (masked != null) {
      // runc keeps the annotation with the container: its checkpoints hand this file to CRIU
      OciConfig.load(bundle).annotation(MaskedMounts.ANNOTATION, bundle.resolve(MaskedMounts.CONFIG_FILE).toString()).save();
    }
    detached(List.of("runc", "run", "-d", "--bundle", bundle.toString(), id), bundle.resolve("runc-run.log"));
  }

  @Override
  public ContainerStatus state(String id) {
    ContainerStatus known = stateFromFiles(id);
    if (known != null) {
      return known;
    }
    Exec.Result r = Exec.run("runc", "state", id);
    if (!r.ok()) {
      return new ContainerStatus(id, "missing", 0);
    }
    JsonNode n = Json.read(r.stdout(), JsonNode.class);
    return new ContainerStatus(id, n.path("status").asText(), n.path("pid").asLong());
  }

  /**
   * The state of a running or paused container read the way {@code runc state} reads it (its
   * state.json, the init process's start time, the freezer) without starting runc: this is
   * asked inside the frozen window. Null when the answer is anything else (stopped, created,
   * unknown): runc itself is asked then.
   */
  static ContainerStatus stateFromFiles(String id) {
    try {
      Path dir = Path.of("/run/runc", id);
      if (!Files.isRegularFile(dir.resolve("state.json")) || Files.exists(dir.resolve("exec.fifo"))) {
        return null;
      }
      JsonNode n = runcStateFile(id);
      long pid = n.path("init_process_pid").asLong();
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      // f[0] is field 3 (state), f[19] field 22 (start time in clock ticks)
      if (f[0].equals("Z") || f[0].equals("X") || !f[19].equals(n.path("init_process_start").asText())) {
        return null;
      }
      JsonNode cg = n.path("cgroup_paths");
      String frozen;
      if (cg.hasNonNull("freezer")) {
        frozen = Files.readString(Path.of(cg.get("freezer").asText(), "freezer.state")).strip();
        frozen = frozen.equals("THAWED") ? "" : frozen;
      } else if (cg.hasNonNull("")) {
        frozen = Files.readString(Path.of(cg.get("").asText(), "cgroup.freeze")).strip().equals("1") ? "FROZEN" : "";
      } else {
        return null;
      }
      return new ContainerStatus(id, frozen.isEmpty() ? "running" : "paused", pid);
    } catch (IOException | RuntimeException e) {
      return null; // gone meanwhile, or a state.json runc writes differently: ask runc
    }
  }

  /** The state runc keeps of container {@code id} (its state.json). */
  private static JsonNode runcStateFile(String id) throws IOException {
    return Json.read(Files.readString(Path.of("/run/runc", id, "state.json")), JsonNode.class);
  }

  @Override
  public void destroy(String id) {
    if (!Files.exists(Path.of("/run/runc", id))) {
      return; // runc keeps every container it knows there: nothing to ask it (saves a process in the frozen window)
    }
    if (state(id).status().equals("missing")) {
      removeStaleState(id);
      return;
    }
    Exec.run("runc", "kill", id, "KILL");
    Exec.Result r = Exec.run("runc", "delete", "-f", id);
    if (!r.ok() && !state(id).status().equals("missing")) {
      r.check();
    }
  }

  /**
   * A runc restore killed half-way leaves its state directory with CRIU's root still mounted
   * in it: runc then neither knows the container nor lets the id be used again.
   */
  private static void removeStaleState(String id) {
    Path dir = Path.of("/run/runc", id);
    if (Files.isDirectory(dir)) {
      Files2.deleteTree(dir); // unmounts first
    }
  }

  /**
   * Freezes the container through runc before CRIU runs. CRIU freezes a cgroup v1 container
   * itself otherwise, but it checks the freezer only every 100 ms, which the pod pays in frozen
   * time (runc polls in microseconds: ~6 ms here). A cgroup CRIU finds frozen it seizes at once.
   */
  private static void pause(String id) {
    if (!freezeThroughCgroup(id)) {
      Exec.run("runc", "pause", id); // best effort: CRIU freezes it anyway if this did not
    }
  }

  /**
   * What {@code runc pause} does on a cgroup v1 host (write FROZEN to the container's freezer
   * and wait for the state to follow), without starting runc inside the frozen window. False
   * when it could not: runc is asked then.
   */
  private static boolean freezeThroughCgroup(String id) {
    try {
      String freezer = freezerPath(id);
      if (freezer.isEmpty()) {
        return false;
      }
      Path state = Path.of(freezer, "freezer.state");
      Files.writeString(state, "FROZEN");
      long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
      while (System.nanoTime() < deadline) {
        if (Files.readString(state).strip().equals("FROZEN")) {
          return true;
        }
        Thread.onSpinWait();
        java.util.concurrent.locks.LockSupport.parkNanos(200_000);
      }
      return false; // still FREEZING: runc pause retries the same way, and CRIU waits for it too
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  @Override
  public void thaw(String id) {
    if ("paused".equals(state(id).status())) {
      Exec.run("runc", "resume", id).check();
    }
  }

  @Override
  public void checkpoint(String id, Path imageDir, Path workDir) {
    Files2.mkdirs(imageDir, workDir);
    DumpConfig conf = prepareDump(id, imageDir);
    pause(id);
    try {
      writeDumpConfig(id, conf, imageDir);
    } catch (RuntimeException e) {
      thaw(id);
      throw e;
    }
    Exec.Result r =
        Exec.run(
            List.of("runc", "--criu", criu, "checkpoint", "--tcp-established",
                "--image-path", imageDir.toString(), "--work-path", workDir.toString(), id),
            CRIU_TIMEOUT,
            criuEnv);
    if (!r.ok()) {
      // a runc that died (killed) leaves its CRIU running on: thawed now, the tree would be
      // frozen again by that CRIU's clean-up, which puts back the freezer state it found
      awaitUntraced(id, CRIU_LETS_GO);
      thaw(id); // a failed dump leaves the tree running, but frozen as we found it
      throw new CheckpointException("checkpoint of " + id, r, CriuLog.explain(workDir.resolve("dump.log")));
    }
  }

  /** How long a CRIU left behind by its runc gets to end its dump (it cures and releases the tree). */
  private static final Duration CRIU_LETS_GO = Duration.ofSeconds(30);

  /**
   * Waits until no process traces a task of container {@code id} (CRIU seizes them all while it
   * dumps), at most {@code timeout}; then kills whatever still does, so that a thaw sticks.
   */
  static void awaitUntraced(String id, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    java.util.Set<Long> tracers = tracersOf(id);
    while (!tracers.isEmpty() && System.nanoTime() < deadline) {
      java.util.concurrent.locks.LockSupport.parkNanos(20_000_000);
      tracers = tracersOf(id);
    }
    for (long tracer : tracers) {
      org.slf4j.LoggerFactory.getLogger(RuncRuntime.class).warn(
          "process {} still traces container {} {} s after its checkpoint failed; killing it", tracer, id,
          timeout.toSeconds());
      ProcessHandle.of(tracer).ifPresent(ProcessHandle::destroyForcibly);
    }
  }

  @Override
  public java.util.Set<Object> filesMappedForWriting(String id) {
    try {
      return SharedMappings.writableFiles(cgroupProcesses(id));
    } catch (IOException | RuntimeException e) {
      LOG.warn("files mapped for writing by {} not found ({}): only files whose times changed are copied again", id,
          e.toString());
      return java.util.Set.of();
    }
  }

  @Override
  public java.util.Set<Long> processes(String id) {
    try {
      return cgroupProcesses(id);
    } catch (IOException | RuntimeException e) {
      return ContainerRuntime.super.processes(id);
    }
  }

  /** The processes in the container's cgroup (cgroup v1's freezer, or v2's one tree), from runc's state. */
  private static java.util.Set<Long> cgroupProcesses(String id) throws IOException {
    java.util.Set<Long> pids = new java.util.HashSet<>();
    String dir = CriuDumpCommand.freezerCgroup(runcStateFile(id).path("cgroup_paths"));
    if (dir.isEmpty()) {
      throw new IOException("runc's state of " + id + " names no freezer or unified cgroup");
    }
    for (String pid : Files.readAllLines(Path.of(dir, "cgroup.procs"))) {
      if (!pid.isBlank()) {
        pids.add(Long.parseLong(pid.strip()));
      }
    }
    return pids;
  }

  /** The processes tracing a task of container {@code id} (from its freezer cgroup's task list). */
  private static java.util.Set<Long> tracersOf(String id) {
    java.util.Set<Long> tracers = new java.util.HashSet<>();
    try {
      String freezer = freezerPath(id);
      if (freezer.isEmpty()) {
        return tracers;
      }
      for (String tid : Files.readAllLines(Path.of(freezer, "tasks"))) {
        long tracer = ProcessMemory.tracerPid(Long.parseLong(tid.strip()));
        if (tracer != 0) {
          tracers.add(tracer);
        }
      }
    } catch (IOException | RuntimeException e) {
      // no state or cgroup any more: nothing is traced there
    }
    return tracers;
  }

  /** Container {@code id}'s cgroup v1 freezer directory from runc's state, "" when it has none. */
  private static String freezerPath(String id) throws IOException {
    return runcStateFile(id).path("cgroup_paths").path("freezer").asText("");
  }


  @Override
  public void restore(String id, Path bundle, Path imageDir, Path workDir) {
    Files2.mkdirs(workDir);
    restore(id, bundle, imageDir, workDir, false);
  }

  /**
   * Restores with lazy pages: the tree runs as soon as it is rebuilt, its memory arriving
   * through the page client whose socket is in {@code workDir}.
   */
  @Override
  public void restoreLazy(String id, Path bundle, Path imageDir, Path workDir) {
    restore(id, bundle, imageDir, workDir, true);
  }

  private void restore(String id, Path bundle, Path imageDir, Path workDir, boolean lazy) {
    RestoreConfig conf = restoreConfig(bundle, imageDir);
    if (conf != null) {
      try {
        CriuConfigFile.write(conf.file(), conf.content());
      } catch (IOException e) {
        throw new java.io.UncheckedIOException("cannot write the CRIU configuration of " + bundle, e);
      }
    }
    List<String> cmd = restoreCommand(id, bundle, imageDir, workDir, lazy);
    try {
      detached(cmd, workDir.resolve("runc-restore.log"));
    } catch (CommandFailedException e) {
      throw restoreFailed(id, lazy, e.result(), workDir);
    }
  }

  private List<String> restoreCommand(String id, Path bundle, Path imageDir, Path workDir, boolean lazy) {
    List<String> cmd = new java.util.ArrayList<>(List.of("runc", "--criu", criu, "restore", "-d"));
    if (lazy) {
      cmd.add("--lazy-pages");
    }
    cmd.addAll(List.of("--tcp-established", "--image-path", imageDir.toString(), "--work-path", workDir.toString(),
        "--bundle", bundle.toString(), id));
    return cmd;
  }

  private static CheckpointException restoreFailed(String id, boolean lazy, Exec.Result r, Path workDir) {
    return new CheckpointException((lazy ? "lazy restore of " : "restore of ") + id, r,
        CriuLog.explain(workDir.resolve("restore.log")));
  }

  /**
   * Starts runc's restore at once, with CRIU held back until {@link PendingRestore#go}: CRIU reads
   * the configuration file the container's annotation names when it takes runc's request, and
   * that file is a FIFO with nothing in it until then ({@link CriuConfigFile#gate}). runc's own
   * start, its CRIU version check (a CRIU of its own), the container's cgroups and CRIU's start
   * (~15-25 ms here, of a ~75 ms restore) are then done before the restore's moment, beside
   * whatever the caller does meanwhile (on 2 busy CPUs that overlap did not shorten a migration's
   * frozen window: README, "Known limits"). Only for an agent's runtime, whose restores always
   * have that file; others restore at {@code go}.
   */
  @Override
  public PendingRestore startRestore(String id, Path bundle, Path imageDir, Path workDir, boolean lazy) {
    RestoreConfig conf = masked == null ? null : restoreConfig(bundle, imageDir);
    if (conf == null) {
      return ContainerRuntime.super.startRestore(id, bundle, imageDir, workDir, lazy);
    }
    Files2.mkdirs(workDir);
    CriuConfigFile.Gate gate;
    try {
      gate = CriuConfigFile.gate(conf.file(), conf.content());
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot make the CRIU configuration of " + bundle + " a gate", e);
    }
    List<String> cmd = restoreCommand(id, bundle, imageDir, workDir, lazy);
    Path log = workDir.resolve("runc-restore.log");
    Process runc;
    try {
      runc = Detached.start(cmd, criuEnv, log);
    } catch (RuntimeException e) {
      gate.shut();
      throw e;
    }
    return new GatedRestore(id, lazy, cmd, log, workDir, runc, gate);
  }

  /** See {@link #startRestore}. */
  private static final class GatedRestore implements PendingRestore {
    /** A restore neither let go nor closed by then is closed: its caller is gone. */
    private static final Duration ABANDONED_AFTER = Duration.ofMinutes(10);
    private final String id;
    private final boolean lazy;
    private final List<String> cmd;
    private final Path log;
    private final Path workDir;
    private final Process runc;
    private final CriuConfigFile.Gate gate;
    private boolean ended;

    GatedRestore(String id, boolean lazy, List<String> cmd, Path log, Path workDir, Process runc,
        CriuConfigFile.Gate gate) {
      this.id = id;
      this.lazy = lazy;
      this.cmd = cmd;
      this.log = log;
      this.workDir = workDir;
      this.runc = runc;
      this.gate = gate;
      java.util.concurrent.CompletableFuture.delayedExecutor(ABANDONED_AFTER.toMillis(),
          java.util.concurrent.TimeUnit.MILLISECONDS).execute(this::close);
    }

    @Override
    public void go() {
      synchronized (this) {
        if (ended) {
          throw new IllegalStateException("the restore of " + id + " was abandoned or already let go");
        }
        ended = true;
      }
      try {
        gate.open();
      } catch (IOException e) {
        stop();
        throw new java.io.UncheckedIOException("cannot hand CRIU its configuration for the restore of " + id, e);
      }
      Exec.Result r = Detached.await(runc, cmd, log, CRIU_TIMEOUT);
      if (r.exitCode() != 0) {
        throw restoreFailed(id, lazy, r, workDir);
      }
    }

    @Override
    public void close() {
      synchronized (this) {
        if (ended) {
          return;
        }
        ended = true;
      }
      stop();
    }

    /**
     * Kills what runc started until runc itself ends: its CRIU waiting for its configuration,
     * or, when the restore is abandoned that early, the CRIU of its version check and then
     * whatever it starts next. runc then fails the restore and removes the container's state and
     * cgroups itself, as after any CRIU failure. (Killing runc instead would leave its CRIU
     * orphaned, with runc's request already in its socket.)
     */
    private void stop() {
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      long killed = 0;
      try {
        while (true) {
          killed += runc.descendants().filter(ProcessHandle::destroyForcibly).count();
          if (runc.waitFor(50, java.util.concurrent.TimeUnit.MILLISECONDS)) {
            LOG.info("restore of {} started ahead abandoned before CRIU ran ({} process(es) of CRIU killed, runc exit {})",
                id, killed, runc.exitValue());
            return;
          }
          if (System.nanoTime() > deadline) {
            runc.destroyForcibly(); // its state directory is then removed with the container (destroy)
            runc.waitFor(5, java.util.concurrent.TimeUnit.SECONDS);
            runc.descendants().forEach(ProcessHandle::destroyForcibly);
            LOG.warn("restore of {} started ahead: runc did not end within 10 s of its CRIU's; killed", id);
            return;
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } finally {
        gate.shut();
      }
    }
  }

  @Override
  public PostCopy.LazyDump checkpointLazy(String id, Path imageDir, Path workDir, String listenIp, int port)
      throws Exception {
    PostCopy.ensurePipeSize();
    Files2.mkdirs(imageDir, workDir);
    // CRIU is asked directly what runc would ask it (CriuDumpCommand): everything read and
    // written before the freeze
    JsonNode state = runcStateFile(id);
    DumpConfig conf = prepareDump(id, state, imageDir);
    List<String> cmd = new ArrayList<>(List.of(criu));
    cmd.addAll(CriuDumpCommand.lazy(state, imageDir, workDir, listenIp, port, 3));
    CriuDumpCommand.writeDescriptors(state, imageDir);
    Path fifo = PostCopy.statusFifo(workDir);
    long frozenAt = System.nanoTime();
    pause(id);
    try {
      writeDumpConfig(id, conf, imageDir);
      return PostCopy.startDump(cmd, criuEnv, id, workDir, fifo, listenIp, port, frozenAt, Duration.ofMinutes(10));
    } catch (Exception e) {
      awaitUntraced(id, CRIU_LETS_GO);
      thaw(id);
      throw e;
    }
  }

  @Override
  public PostCopy.PageClient startPageClient(Path imageDir, Path workDir, String pageServer) throws Exception {
    return PostCopy.startPageClient(criu, criuEnv, imageDir, workDir, pageServer, Duration.ofSeconds(30));
  }

  @Override
  public void limitCpu(String id, int percent) {
    String quota = percent <= 0 ? "-1" : Long.toString(percent * 1000L); // per 100 ms period
    Exec.run("runc", "update", "--cpu-period", "100000", "--cpu-quota", quota, id).check();
  }

  @Override
  public List<String> list(String prefix) {
    List<String> ids = new ArrayList<>();
    Exec.Result r = Exec.run("runc", "list", "-q");
    for (String line : r.stdout().split("\n")) {
      if (!line.isBlank() && line.strip().startsWith(prefix)) {
        ids.add(line.strip());
      }
    }
    return ids;
  }

  /**
   * The CRIU configuration file a container's dump hands to CRIU: the lines for its masked
   * directories, and its tmpfs mounts to name external if the check after the freeze confirms them.
   */
  private record DumpConfig(Path file, long pid, List<String> masks, List<PodTmpfs.Mount> tmpfs) {}

  /**
   * Before a dump (outside the frozen window): the CRIU configuration the container's
   * annotation names gets its masked directories as external mounts ({@link MaskedMounts}).
   * Containers without the annotation (run before, or elsewhere) are dumped as they always were
   * (null).
   */
  private DumpConfig prepareDump(String id, Path imageDir) {
    JsonNode state;
    try {
      state = runcStateFile(id);
    } catch (IOException | RuntimeException e) {
      // CRIU then archives the masked mounts as any tmpfs: slower, not wrong
      LOG.warn("masked mounts of {} not named external: {}", id, e.toString());
      return null;
    }
    return prepareDump(id, state, imageDir);
  }

  /** {@link #prepareDump(String, Path)} with runc's state of the container already read. */
  private DumpConfig prepareDump(String id, JsonNode state, Path imageDir) {
    JsonNode config = state.path("config");
    String file = CriuDumpCommand.label(config, MaskedMounts.ANNOTATION);
    if (file == null) {
      return null;
    }
    try {
      if (masked == null) {
        // a runtime that cannot bind them at the restore (a benchmark's plain runc): CRIU archives
        // them, whatever an agent wrote in the file before
        CriuConfigFile.write(Path.of(file), "");
        Files.deleteIfExists(imageDir.resolve(MaskedMounts.LIST_FILE));
        Files.deleteIfExists(imageDir.resolve(PodTmpfs.FILE));
        return null;
      }
      List<String> maskPaths = new ArrayList<>();
      config.path("mask_paths").forEach(p -> maskPaths.add(p.asText()));
      long pid = state.path("init_process_pid").asLong();
      List<String> masks = MaskedMounts.prepareDump(pid, maskPaths, imageDir);
      List<PodTmpfs.Mount> tmpfs = List.of();
      try {
        tmpfs = PodTmpfs.plan(pid);
      } catch (IOException | RuntimeException e) {
        LOG.warn("tmpfs mounts of {} left to CRIU's archives: {}", id, e.toString());
      }
      // written now, as if the check after the freeze found nothing changed (what it nearly
      // always finds): the listing and its record cost ~1 ms, which the frozen pod need not wait for
      List<String> lines = new ArrayList<>(masks);
      lines.addAll(PodTmpfs.record(tmpfs, imageDir));
      CriuConfigFile.write(Path.of(file), lines(lines));
      return new DumpConfig(Path.of(file), pid, masks, tmpfs);
    } catch (IOException | RuntimeException e) {
      LOG.warn("masked mounts of {} not named external: {}", id, e.toString());
      try {
        // what an earlier dump wrote there would name mounts this dump's images say nothing of
        CriuConfigFile.write(Path.of(file), "");
      } catch (IOException ignored) {
        // CRIU then fails on the file, and the dump with it: rolled back like any failed dump
      }
      return null;
    }
  }

  /**
   * With the container frozen: keeps external only those of its tmpfs mounts that still hold
   * what they held before the freeze ({@link PodTmpfs#confirm}); the file is written again only
   * if one changed. On a failure the masked directories alone are named (CRIU archives the
   * tmpfs mounts, as before).
   */
  private void writeDumpConfig(String id, DumpConfig conf, Path imageDir) {
    if (conf == null || conf.tmpfs().isEmpty()) {
      return;
    }
    List<PodTmpfs.Mount> unchanged = PodTmpfs.confirm(conf.pid(), conf.tmpfs());
    if (unchanged.size() == conf.tmpfs().size()) {
      return;
    }
    LOG.info("{} of the tmpfs mounts of {} changed as it froze: left to CRIU's archives", conf.tmpfs().size()
        - unchanged.size(), id);
    List<String> lines = new ArrayList<>(conf.masks());
    try {
      lines.addAll(PodTmpfs.record(unchanged, imageDir));
    } catch (IOException | RuntimeException e) {
      LOG.warn("tmpfs mounts of {} left to CRIU's archives: {}", id, e.toString());
      try {
        PodTmpfs.record(List.of(), imageDir);
      } catch (IOException ignored) {
        // the restore then makes tmpfs mounts nobody binds: harmless
      }
    }
    try {
      CriuConfigFile.write(conf.file(), lines(lines));
    } catch (IOException e) {
      // CRIU would then take a changed tmpfs for external: the dump must not run on it
      throw new java.io.UncheckedIOException("cannot write the CRIU configuration of " + id, e);
    }
  }

  /** The CRIU configuration a restore hands CRIU, and where ({@link MaskedMounts#ANNOTATION}). */
  private record RestoreConfig(Path file, String content) {}

  /**
   * Before a restore: the bundle's annotation names its CRIU configuration (on this host: a
   * bundle moved here named its source's), which binds what the dump named external to this
   * host's empty tmpfs, and which the restored container keeps for its next dump. Null when
   * there is nothing to write (a runtime without masked mounts, a bundle without the annotation).
   */
  private RestoreConfig restoreConfig(Path bundle, Path imageDir) {
    try {
      if (masked == null) {
        if (Files.exists(imageDir.resolve(MaskedMounts.LIST_FILE)) || Files.exists(imageDir.resolve(PodTmpfs.FILE))) {
          throw new IllegalStateException("the images in " + imageDir + " name runc's masked directories external, "
              + "which this runtime cannot bind: restore them with an agent's runtime (withMaskedMounts)");
        }
        String file = OciConfig.load(bundle).annotationValue(MaskedMounts.ANNOTATION);
        if (file != null && Files.isDirectory(Path.of(file).getParent())) {
          return new RestoreConfig(Path.of(file), ""); // not what an agent wrote there for its own restores
        }
        return null;
      }
      Path file = bundle.resolve(MaskedMounts.CONFIG_FILE);
      OciConfig cfg = OciConfig.load(bundle);
      if (!file.toString().equals(cfg.annotationValue(MaskedMounts.ANNOTATION))) {
        cfg.annotation(MaskedMounts.ANNOTATION, file.toString()).save();
      }
      List<String> lines = new ArrayList<>(masked.prepareRestore(imageDir));
      lines.addAll(PodTmpfs.prepareRestore(imageDir, tmpfsDir(bundle)));
      return new RestoreConfig(file, lines(lines));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot write the CRIU configuration of " + bundle, e);
    }
  }

  private static String lines(List<String> lines) {
    return lines.stream().map(l -> l + "\n").collect(java.util.stream.Collectors.joining());
  }

  /**
   * Where a restored container's own tmpfs mounts live ({@link PodTmpfs}): beside the pod's
   * bundles ({@code pods/POD/bundles/C} -> {@code pods/POD/tmpfs/C}), not in them, as the
   * bundles are copied to the next host; removed (unmounted) with the pod's directory.
   */
  static Path tmpfsDir(Path bundle) {
    Path b = bundle.toAbsolutePath().normalize();
    return b.getParent().resolveSibling("tmpfs").resolve(b.getFileName());
  }

  /** Runs runc detached ({@link Detached}) with CRIU's environment. */
  private void detached(List<String> cmd, Path log) {
    Exec.Result r = Detached.run(cmd, criuEnv, log, CRIU_TIMEOUT);
    if (r.exitCode() != 0) {
      throw new CommandFailedException(r);
    }
  }
}
