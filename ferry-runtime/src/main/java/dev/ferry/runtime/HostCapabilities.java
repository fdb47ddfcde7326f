package dev.ferry.runtime;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What this host can do for checkpoint and restore, as the probe found it.
 *
 * @param criuPath CRIU binary used
 * @param criuVersion e.g. "4.2.1", or null when CRIU does not run
 * @param criuCheckOk whether {@code criu check} says "Looks good."
 * @param criuCheckMessage what {@code criu check} said when it failed
 * @param softDirty kernel memory dirty tracking (needed for CRIU's incremental pre-dump)
 * @param userfaultfd post-copy (lazy pages) support
 * @param networkLock how CRIU can lock a pod's network ("iptables", "nftables" or "none")
 * @param hardwareBreakpoints whether CRIU can use hardware breakpoints here
 * @param criuEnv environment to give CRIU (e.g. CRIU_FAULT=130 to avoid breakpoints)
 * @param runsc what gVisor's runsc can do here (null when not probed)
 */
public record HostCapabilities(
    String criuPath,
    String criuVersion,
    boolean criuCheckOk,
    String criuCheckMessage,
    boolean softDirty,
    boolean userfaultfd,
    String networkLock,
    boolean hardwareBreakpoints,
    Map<String, String> criuEnv,
    Runsc runsc) {

  /** Without a runsc probe. */
  public HostCapabilities(String criuPath, String criuVersion, boolean criuCheckOk, String criuCheckMessage,
      boolean softDirty, boolean userfaultfd, String networkLock, boolean hardwareBreakpoints, Map<String, String> criuEnv) {
    this(criuPath, criuVersion, criuCheckOk, criuCheckMessage, softDirty, userfaultfd, networkLock, hardwareBreakpoints,
        criuEnv, null);
  }

  /** The same capabilities with runsc's probe added. */
  public HostCapabilities withRunsc(Runsc r) {
    return new HostCapabilities(criuPath, criuVersion, criuCheckOk, criuCheckMessage, softDirty, userfaultfd, networkLock,
        hardwareBreakpoints, criuEnv, r);
  }

  /**
   * gVisor's runsc on this host.
   *
   * @param path the binary
   * @param version its version ("0.0~20240729.0"), or null when it does not run
   * @param unusableReason why pods cannot run or move on it here, or null when they can
   */
  public record Runsc(String path, String version, String unusableReason) {
    public boolean usable() {
      return unusableReason == null;
    }

    /** What it can do, for the agent's info: checkpoint yes, the rest of CRIU's repertoire no. */
    public Map<String, Object> asMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("runscPath", path);
      m.put("runscVersion", version);
      m.put("runscUsable", usable());
      m.put("runscCheckpoint", usable());
      m.put("runscPreDump", false);
      m.put("runscLazyPages", false);
      m.put("runscTcpConnectionsKept", false);
      if (unusableReason != null) {
        m.put("runscUnusableReason", unusableReason);
      }
      return m;
    }
  }

  /** CRIU older than 4.2 fails on this project's kernels (vDSO, TCP socket options). */
  public boolean criuUsable() {
    return criuVersion != null && criuCheckOk && versionAtLeast(criuVersion, 4, 2);
  }

  /** Why checkpoint/restore cannot work here, or null when it can. */
  public String unusableReason() {
    if (criuVersion == null) {
      return "CRIU not found or does not run (" + criuPath + "); run scripts/setup-host.sh";
    }
    if (!versionAtLeast(criuVersion, 4, 2)) {
      return "CRIU " + criuVersion + " is too old, need >= 4.2; run scripts/setup-host.sh";
    }
    if (!criuCheckOk) {
      return "'criu check' fails: " + criuCheckMessage;
    }
    if ("none".equals(networkLock)) {
      return "no iptables-restore for CRIU's network lock; install iptables";
    }
    return null;
  }

  public Map<String, Object> asMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("criuPath", criuPath);
    m.put("criuVersion", criuVersion);
    m.put("criuCheckOk", criuCheckOk);
    m.put("criuUsable", criuUsable());
    m.put("softDirty", softDirty);
    m.put("userfaultfd", userfaultfd);
    m.put("networkLock", networkLock);
    m.put("hardwareBreakpoints", hardwareBreakpoints);
    if (unusableReason() != null) {
      m.put("unusableReason", unusableReason());
    }
    if (runsc != null) {
      m.putAll(runsc.asMap());
    }
    return m;
  }

  static boolean versionAtLeast(String version, int major, int minor) {
    String[] p = version.split("\\.");
    try {
      int ma = Integer.parseInt(p[0]);
      int mi = p.length > 1 ? Integer.parseInt(p[1].replaceAll("\\D.*", "")) : 0;
      return ma > major || (ma == major && mi >= minor);
    } catch (NumberFormatException e) {
      return false;
    }
  }
}
