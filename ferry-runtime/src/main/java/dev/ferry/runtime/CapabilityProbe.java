package dev.ferry.runtime;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/** Asks CRIU and the kernel what this host can do; the migration strategy follows from it. */
public final class CapabilityProbe {
  private CapabilityProbe() {}

  public static HostCapabilities probe(String criu) {
    CriuKdatCache.ensure(criu); // first: the checks below start CRIU several times
    Exec.Result version = Exec.run(List.of(criu, "--version"), Duration.ofSeconds(20), Map.of());
    String v = null;
    for (String line : version.stdout().split("\n")) {
      if (line.startsWith("Version:")) {
        v = line.substring("Version:".length()).strip();
      }
    }
    if (!version.ok() || v == null) {
      return new HostCapabilities(criu, null, false, version.stderr().strip(), false, false, "none", false, Map.of());
    }
    Exec.Result check = Exec.run(List.of(criu, "check"), Duration.ofSeconds(30), Map.of());
    boolean checkOk = check.ok() && (check.stdout() + check.stderr()).contains("Looks good");
    boolean softDirty = feature(criu, "mem_dirty_track");
    boolean uffd = feature(criu, "uffd-noncoop");
    String lock = onPath("iptables-restore") ? "iptables" : onPath("nft") ? "nftables" : "none";
    boolean breakpoints = checkOk && breakpointsWork(criu);
    // CRIU's own switch (fault id 130) skips hardware breakpoints; 4.2+ also notices alone.
    Map<String, String> env = breakpoints ? Map.of() : Map.of("CRIU_FAULT", "130");
    return new HostCapabilities(
        criu, v, checkOk, checkOk ? "" : (check.stdout() + check.stderr()).strip(), softDirty, uffd, lock, breakpoints, env);
  }

  /**
   * What runsc can do here: it must run and be a 2024 build or later (see
   * {@link RunscRuntime#versionUsable}); only cold checkpoints, and TCP connections are not kept.
   */
  public static HostCapabilities.Runsc probeRunsc(String runsc) {
    String v = RunscRuntime.version(runsc);
    if (v == null) {
      return new HostCapabilities.Runsc(runsc, null, "runsc not found or does not run (" + runsc
          + "); run scripts/setup-host.sh, which installs Debian 13's runsc into .ferry/runsc");
    }
    if (!RunscRuntime.versionUsable(v)) {
      return new HostCapabilities.Runsc(runsc, v, "runsc " + v + " is too old: builds before 2024 cannot checkpoint a"
          + " listening socket (\"endpoint still has waiters upon save\"); run scripts/setup-host.sh");
    }
    return new HostCapabilities.Runsc(runsc, v, null);
  }

  private static boolean feature(String criu, String name) {
    Exec.Result r = Exec.run(List.of(criu, "check", "--feature", name), Duration.ofSeconds(20), Map.of());
    return r.ok() && !(r.stdout() + r.stderr()).contains("OFF");
  }

  private static boolean onPath(String tool) {
    for (String dir : System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
      if (new File(dir, tool).canExecute()) {
        return true;
      }
    }
    return new File("/usr/sbin/" + tool).canExecute();
  }

  /**
   * Dumps a throw-away sleeping process (left running) and reads CRIU's log: CRIU says
   * there when hardware breakpoints do not work (as in most VMs without nested debug).
   */
  private static boolean breakpointsWork(String criu) {
    Path dir = null;
    Process sleeper = null;
    try {
      dir = Files.createTempDirectory("ferry-probe");
      ProcessBuilder pb = new ProcessBuilder("setsid", "sleep", "60");
      pb.redirectInput(new File("/dev/null"));
      pb.redirectOutput(new File("/dev/null"));
      pb.redirectError(new File("/dev/null"));
      sleeper = pb.start();
      Thread.sleep(50);
      long pid = sleeper.children().findFirst().map(ProcessHandle::pid).orElse(sleeper.pid());
      Exec.run(
          List.of(criu, "dump", "-t", String.valueOf(pid), "-D", dir.toString(), "--leave-running", "-v4", "-o", "dump.log"),
          Duration.ofSeconds(30),
          Map.of());
      Path log = dir.resolve("dump.log");
      String text = Files.exists(log) ? Files.readString(log) : "";
      return !text.contains("breakpoints don't seem to work") && !text.contains("breakpoints appear to be disabled");
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } finally {
      if (sleeper != null) {
        sleeper.descendants().forEach(ProcessHandle::destroyForcibly);
        sleeper.destroyForcibly();
      }
      Files2.deleteTree(dir);
    }
  }
}
