package dev.ferry.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@link ContainerRuntime} on gVisor's {@code runsc}: each container is a sandbox with its own
 * kernel (netstack included), so a checkpoint is {@code runsc checkpoint} of the whole sandbox,
 * without CRIU.
 *
 * <p>What this runsc (Debian 13's 0.0~20240729) can and cannot do, found on this machine:
 * <ul>
 *   <li>Only cold checkpoints: no pre-dump, incremental, page server or lazy restore.
 *   <li>Established TCP connections cannot be saved ("endpoint cannot be saved in connected
 *       state", and the sandbox dies with its data); with {@code --net-disconnect-ok} they are
 *       reset at the save, but a restored app that still holds such a socket may spin on it.
 *       Callers drain connections first (see {@link #tcpConnections}).
 *   <li>{@code --network=sandbox} refuses to start in what it takes for the root network
 *       namespace (it looks for {@code /proc/sys/net/core/rmem_default}, gvisor#10704): run,
 *       create and restore run in a private mount namespace with {@code /proc/sys/net} hidden.
 *       The sandbox still joins the network namespace the spec names.
 *   <li>netstack takes the interface's addresses when it starts (restores included) and does
 *       not give them back: the namespace must hold the pod's IP and MAC before a restore.
 * </ul>
 *
 * <p>Unlike runc's, {@link #checkpoint} leaves the sandbox paused (it checkpoints with
 * {@code --leave-running} after a {@code runsc pause}): the source stays restorable by a plain
 * {@link #thaw} until the migration commits, and a failed checkpoint leaves it as it was.
 */
public final class RunscRuntime implements ContainerRuntime {
  private static final Duration TIMEOUT = Duration.ofMinutes(10);
  /** Hides /proc/sys/net from runsc in a private mount namespace (see the class comment). */
  private static final List<String> HIDE_PROC_SYS_NET = List.of("unshare", "-m", "--propagation", "private", "sh", "-c",
      "mount -t tmpfs -o size=4k,mode=555 ferry-gvhide /proc/sys/net && exec \"$@\"", "sh");

  private final String runsc;
  private final Path root;

  /**
   * @param runsc the runsc binary
   * @param root runsc's state directory (its {@code --root}), one per agent
   */
  public RunscRuntime(String runsc, Path root) {
    this.runsc = runsc;
    this.root = root;
  }

  /**
   * Finds runsc: $FERRY_RUNSC, else the one the host set-up unpacked into
   * {@code $FERRY_HOME/.ferry/runsc/runsc}, else {@code runsc} on PATH.
   */
  public static String locate() {
    String env = System.getenv("FERRY_RUNSC");
    if (env != null && !env.isBlank()) {
      return env;
    }
    String home = System.getenv("FERRY_HOME");
    if (home != null && Files.isExecutable(Path.of(home, ".ferry", "runsc", "runsc"))) {
      return Path.of(home, ".ferry", "runsc", "runsc").toString();
    }
    return "runsc";
  }

  @Override
  public String name() {
    return "runsc";
  }

  public Path root() {
    return root;
  }

  private List<String> runsc(String... args) {
    List<String> cmd = new ArrayList<>(List.of(runsc, "--root", root.toString()));
    cmd.addAll(List.of(args));
    return cmd;
  }

  /** Flags of the commands that start a sandbox: its own netstack in the spec's namespace, systrap. */
  private List<String> sandboxCommand(String... args) {
    List<String> cmd = new ArrayList<>(HIDE_PROC_SYS_NET);
    cmd.addAll(List.of(runsc, "--root", root.toString(), "--network=sandbox", "--net-disconnect-ok",
        "--overlay2=root:memory"));
    cmd.addAll(List.of(args));
    return cmd;
  }

  @Override
  public void run(String id, Path bundle) {
    Files2.mkdirs(root);
    detached(sandboxCommand("run", "-detach", "--bundle", bundle.toString(), id), bundle.resolve("runsc-run.log"),
        "runsc run of " + id);
  }

  @Override
  public ContainerStatus state(String id) {
    if (!Files.isDirectory(root)) {
      return new ContainerStatus(id, "missing", 0);
    }
    Exec.Result r = Exec.run(runsc("state", id));
    if (!r.ok()) {
      return new ContainerStatus(id, "missing", 0);
    }
    JsonNode n = Json.read(r.stdout(), JsonNode.class);
    return new ContainerStatus(id, n.path("status").asText(), n.path("pid").asLong());
  }

  @Override
  public void destroy(String id) {
    if (state(id).status().equals("missing")) {
      return;
    }
    Exec.Result r = Exec.run(runsc("delete", "-force", id));
    if (!r.ok() && !state(id).status().equals("missing")) {
      throw new CommandFailedException(r);
    }
  }

  /**
   * Pauses the sandbox and checkpoints it with {@code --leave-running}: it stays paused, so that
   * the source can be resumed as it was ({@link #thaw}) until the target is proven running. A
   * failed checkpoint resumes it at once.
   */
  @Override
  public void checkpoint(String id, Path imageDir, Path workDir) {
    Files2.mkdirs(imageDir, workDir);
    Exec.Result pause = Exec.run(runsc("pause", id));
    if (!pause.ok()) {
      throw new CheckpointException("runsc pause of " + id, pause, "");
    }
    Exec.Result r = Exec.run(runsc("checkpoint", "--compression=none", "--leave-running", "--image-path",
        imageDir.toString(), id), TIMEOUT, Map.of());
    if (!r.ok()) {
      thaw(id);
      throw new CheckpointException("runsc checkpoint of " + id, r, "");
    }
  }

  @Override
  public void thaw(String id) {
    if ("paused".equals(state(id).status())) {
      Exec.run(runsc("resume", id)).check();
    }
  }

  @Override
  public void restore(String id, Path bundle, Path imageDir, Path workDir) {
    Files2.mkdirs(root, workDir);
    detached(sandboxCommand("restore", "-detach", "--image-path", imageDir.toString(), "--bundle", bundle.toString(), id),
        workDir.resolve("runsc-restore.log"), "runsc restore of " + id);
  }

  private static UnsupportedOperationException unsupported(String what) {
    return new UnsupportedOperationException("runsc (gVisor) cannot " + what
        + ": it only checkpoints a whole sandbox (no pre-dump, lazy pages or page server); use --strategy cold");
  }

  @Override
  public PostCopy.LazyDump checkpointLazy(String id, Path imageDir, Path workDir, String listenIp, int port) {
    throw unsupported("dump lazily (post-copy)");
  }

  @Override
  public PostCopy.PageClient startPageClient(Path imageDir, Path workDir, String pageServer) {
    throw unsupported("serve pages to a lazy restore");
  }

  @Override
  public void restoreLazy(String id, Path bundle, Path imageDir, Path workDir) {
    throw unsupported("restore lazily");
  }

  @Override
  public void limitCpu(String id, int percent) {
    throw new UnsupportedOperationException("runsc (gVisor): Ferry does not cap a sandbox's CPU (no --on-budget-miss"
        + " throttle; it needs pre-copy rounds, which runsc cannot do either)");
  }

  @Override
  public List<String> list(String prefix) {
    List<String> ids = new ArrayList<>();
    if (!Files.isDirectory(root)) {
      return ids;
    }
    Exec.Result r = Exec.run(runsc("list", "-quiet"));
    for (String line : r.stdout().split("\n")) {
      if (!line.isBlank() && line.strip().startsWith(prefix)) {
        ids.add(line.strip());
      }
    }
    return ids;
  }

  /** Runs {@code args} inside the sandbox (as {@code runsc exec}) and returns what it said. */
  public Exec.Result exec(String id, List<String> args, Duration timeout) {
    List<String> cmd = runsc("exec", id);
    cmd.addAll(args);
    return Exec.run(cmd, timeout, Map.of());
  }

  /**
   * TCP connections inside the sandbox that a checkpoint would have to reset (established,
   * closing by the peer, or being accepted), as lines "local remote state" read from the
   * sandbox's own {@code /proc/net/tcp} and {@code tcp6} (with its busybox).
   */
  public List<String> tcpConnections(String id) {
    Exec.Result r = exec(id, List.of("/bin/busybox", "cat", "/proc/net/tcp", "/proc/net/tcp6"), Duration.ofSeconds(20));
    if (!r.ok()) {
      throw new CommandFailedException(r);
    }
    return connectionsIn(r.stdout());
  }

  /** Parses /proc/net/tcp: the entries in state ESTABLISHED (01), SYN_RECV (03) or CLOSE_WAIT (08). */
  static List<String> connectionsIn(String procNetTcp) {
    List<String> out = new ArrayList<>();
    for (String line : procNetTcp.split("\n")) {
      String[] f = line.strip().split("\\s+");
      if (f.length < 4 || !f[0].endsWith(":")) {
        continue; // header
      }
      String st = f[3];
      if (st.equals("01") || st.equals("03") || st.equals("08")) {
        out.add(f[1] + " " + f[2] + " " + (st.equals("01") ? "established" : st.equals("03") ? "syn-recv" : "close-wait"));
      }
    }
    return out;
  }

  /** The installed runsc's version line ("0.0~20240729.0"), or null when it does not run. */
  public static String version(String runsc) {
    Exec.Result r = Exec.run(List.of(runsc, "--version"), Duration.ofSeconds(20), Map.of());
    if (!r.ok()) {
      return null;
    }
    for (String line : r.stdout().split("\n")) {
      if (line.startsWith("runsc version ")) {
        return line.substring("runsc version ".length()).strip();
      }
    }
    return null;
  }

  /**
   * Whether a runsc version can checkpoint a Redis sandbox: builds of 2024 and later (the
   * 2022 one of Debian 12 fails on a listening socket: "endpoint still has waiters upon save").
   */
  public static boolean versionUsable(String version) {
    if (version == null) {
      return false;
    }
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{8})").matcher(version);
    return m.find() && Integer.parseInt(m.group(1)) >= 20240101;
  }

  /** Starts a sandbox command detached ({@link Detached}); fails as a checkpoint or restore of {@code what}. */
  private static void detached(List<String> cmd, Path log, String what) {
    Exec.Result r = Detached.run(cmd, Map.of(), log, TIMEOUT);
    if (r.exitCode() != 0) {
      throw new CheckpointException(what, new Exec.Result(cmd, r.exitCode(), "", r.stderr().strip()), "");
    }
  }
}
