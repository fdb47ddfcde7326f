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
    Map<String, String> criuEnv) {

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
