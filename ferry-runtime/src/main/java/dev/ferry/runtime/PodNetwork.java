package dev.ferry.runtime;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Network plumbing of one pod sandbox: its namespace, its {@code eth0} (a veth whose other
 * end is a port of the host's bridge), its identity (IP and MAC) and the lock that keeps
 * packets out while a process tree is frozen or being restored.
 */
public final class PodNetwork {
  /** Comment that marks Ferry's own DROP rules so they can be found and removed. */
  private static final String LOCK_COMMENT = "ferry-lock";

  private final String netns;
  private final String hostBridge;

  /**
   * @param netns name of the pod's network namespace
   * @param hostBridge bridge in the calling (host) namespace that pod interfaces join
   */
  public PodNetwork(String netns, String hostBridge) {
    this.netns = netns;
    this.hostBridge = hostBridge;
  }

  public String netns() {
    return netns;
  }

  /** Host-side veth name: short (IFNAMSIZ is 16) and derived from the namespace name. */
  public String hostVeth() {
    try {
      byte[] h = MessageDigest.getInstance("SHA-1").digest(netns.getBytes(StandardCharsets.UTF_8));
      return "fv" + HexFormat.of().formatHex(h).substring(0, 10);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Creates the namespace and its eth0 on the host bridge, without an address. Idempotent. */
  public void create() {
    Netns.add(netns);
    String veth = hostVeth();
    if (!Exec.run("ip", "link", "show", veth).ok()) {
      Exec.checked("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns);
    }
    Exec.checked("ip", "link", "set", veth, "master", hostBridge, "up");
  }

  /** Removes the interface and the namespace. Idempotent. */
  public void destroy() {
    if (Exec.run("ip", "link", "show", hostVeth()).ok()) {
      Exec.run("ip", "link", "delete", hostVeth());
    }
    Netns.delete(netns);
  }

  /** Gives eth0 the pod's MAC and IP and brings it up. */
  public void takeIdentity(String ip, int prefixLength, String mac) {
    requireSafe(ip + "/" + prefixLength + " " + mac);
    // one process instead of five: this runs inside the frozen window
    Exec.checked(Netns.in(netns, "sh", "-c", "ip link set eth0 down && ip link set eth0 address " + mac
        + " && { ip addr flush dev eth0; true; } && ip addr add " + ip + "/" + prefixLength + " dev eth0"
        + " && ip link set eth0 up"));
  }

  /** Addresses go into a shell line: only digits, hex, dots, colons and slashes may. */
  private static void requireSafe(String s) {
    if (!s.matches("[0-9a-fA-F.:/ ]+")) {
      throw new IllegalArgumentException("not an address: " + s);
    }
  }

  /** Lets go of the address and takes the link down, so that this sandbox answers for nothing. */
  public void releaseIdentity() {
    if (Netns.exists(netns)) {
      Exec.run(Netns.in(netns, "ip", "addr", "flush", "dev", "eth0"));
      Exec.run(Netns.in(netns, "ip", "link", "set", "eth0", "down"));
    }
  }

  /** The IPv4 address eth0 holds now, or null. */
  public String currentIp() {
    if (!Netns.exists(netns)) {
      return null;
    }
    String out = Exec.run(Netns.in(netns, "ip", "-4", "-o", "addr", "show", "dev", "eth0")).stdout();
    int i = out.indexOf("inet ");
    return i < 0 ? null : out.substring(i + 5).split("[/ ]")[0];
  }

  /** Drops every IP packet in and out (ARP still passes). Idempotent. */
  public void lock() {
    StringBuilder sh = new StringBuilder(); // one process: this also runs inside the frozen window
    for (String chain : new String[] {"INPUT", "OUTPUT"}) {
      sh.append(String.join(" ", iptables("-C", chain))).append(" 2>/dev/null || ")
          .append(String.join(" ", iptables("-I", chain))).append(" || exit 1; ");
    }
    Exec.checked(Netns.in(netns, "sh", "-c", sh.toString()));
  }

  /** Removes Ferry's DROP rules. Idempotent. */
  public void unlock() {
    unlock("OUTPUT", "INPUT");
  }

  /**
   * Lets the sandbox send again while still dropping what comes in: a process tree restored
   * now can send at once (a reply frozen in its socket), while nothing reaches a socket that
   * is not restored yet (which would answer with a reset).
   */
  public void unlockOutput() {
    unlock("OUTPUT");
  }

  private void unlock(String... chains) {
    // a rule may have been inserted twice by a retried step; one process for all of it
    StringBuilder sh = new StringBuilder();
    for (String chain : chains) {
      sh.append("while ").append(String.join(" ", iptables("-D", chain))).append(" 2>/dev/null; do :; done; ");
    }
    Exec.run(Netns.in(netns, "sh", "-c", sh.toString()));
  }

  /**
   * Removes the network-lock rules CRIU leaves behind in the namespace after a dump (a chain
   * named CRIU jumped to from INPUT and OUTPUT); without this a pod resumed here after a
   * rollback is unreachable.
   */
  public void removeCriuLock() {
    for (String tool : new String[] {"iptables", "ip6tables"}) {
      for (String chain : new String[] {"INPUT", "OUTPUT"}) {
        while (Exec.run(Netns.in(netns, tool, "-w", "-D", chain, "-j", "CRIU")).ok()) {
          // CRIU adds one jump per dump; remove them all
        }
      }
      Exec.run(Netns.in(netns, tool, "-w", "-F", "CRIU"));
      Exec.run(Netns.in(netns, tool, "-w", "-X", "CRIU"));
    }
  }

  /**
   * Tells the neighbours (and the bridges between, which learn the MAC's new port) that the IP
   * now lives behind this interface: unsolicited ARP, three times a second apart. Returns at
   * once; arping finishes on its own.
   */
  public void announce(String ip) {
    try {
      new ProcessBuilder(Netns.in(netns, "arping", "-q", "-U", "-c", "3", "-I", "eth0", ip))
          .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
          .redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .redirectError(ProcessBuilder.Redirect.DISCARD)
          .start();
    } catch (java.io.IOException e) {
      throw new CommandFailedException(new Exec.Result(java.util.List.of("arping"), 127, "", e.getMessage()));
    }
  }

  private static String[] iptables(String op, String chain) {
    return new String[] {"iptables", "-w", op, chain, "-m", "comment", "--comment", LOCK_COMMENT, "-j", "DROP"};
  }
}
