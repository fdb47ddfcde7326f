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
  /** Chains of Ferry's network lock; INPUT and OUTPUT jump to them. */
  static final String IN_CHAIN = "FERRY-LOCK-IN";
  static final String OUT_CHAIN = "FERRY-LOCK-OUT";
  private static final String DROP_RULE = " -m comment --comment ferry-lock -j DROP";

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
    ensureLockChains();
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
    Exec.checked(Netns.in(netns, "sh", "-c", identityCommands(ip, prefixLength, mac, true)));
  }

  /**
   * Shell line that gives eth0 the MAC and IP: one {@code ip -batch} process instead of five
   * (this runs inside the frozen window; each process costs a few ms). With {@code up} false
   * the link stays down, so that the sandbox answers for nothing yet.
   */
  private static String identityCommands(String ip, int prefixLength, String mac, boolean up) {
    requireSafe(ip + "/" + prefixLength + " " + mac);
    return "printf 'link set eth0 down\\nlink set eth0 address " + mac + "\\naddr flush dev eth0\\naddr add " + ip + "/"
        + prefixLength + " dev eth0\\n" + (up ? "link set eth0 up\\n" : "") + "' | ip -batch -";
  }

  /**
   * Readies the pod's MAC and IP on eth0 with the link down, behind a lock that drops what comes
   * in and what goes out, all in one process: while the link is down the sandbox answers for
   * nothing, so this may run while the source still holds the address. {@link #linkSwitch()}'s
   * {@code up()} then takes the address in one system call. Nothing reaches a socket not yet
   * restored (which would answer with a reset), and nothing leaves a restored one before the
   * commit opens both ways at once: a reply sent earlier (to a request the pod read before it
   * froze) made its client send its next request into the incoming lock, where it waited for
   * TCP's retransmission timer (~225 ms) after the opening.
   */
  public void stageIdentity(String ip, int prefixLength, String mac) {
    String rules = lockRules(true, true).replace("\n", "\\n");
    Exec.checked(Netns.in(netns, "sh", "-c", "printf '" + rules + "' | iptables-restore -w --noflush && "
        + identityCommands(ip, prefixLength, mac, false)));
  }

  /** A switch for eth0's link, opened now so that flipping it later costs one system call. */
  public LinkSwitch linkSwitch() {
    return LinkSwitch.open(netns, "eth0");
  }

  /**
   * A switch for the host end of the pod's veth (its bridge port). A runsc sandbox's netstack
   * reads eth0 through a packet socket that dies when eth0 itself goes down, so a runsc pod is
   * cut off and reconnected here instead, leaving its eth0 alone.
   */
  public LinkSwitch hostLinkSwitch() {
    return LinkSwitch.openHere(hostVeth());
  }

  /** Whether eth0 holds {@code ip} and is up: whether this sandbox answers for the address. */
  public boolean answersFor(String ip) {
    if (!ip.equals(currentIp())) {
      return false;
    }
    try (LinkSwitch link = linkSwitch()) {
      return link.isUp();
    }
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
    setLock(true, true);
  }

  /** Removes Ferry's DROP rules. Idempotent. */
  public void unlock() {
    setLock(false, false);
  }

  /**
   * An {@link #unlock} made ready ahead: {@code iptables-restore} started in the namespace and
   * waiting for its input, so that the commit, inside the frozen window, does not wait for a
   * process to start (~10-20 ms here). Closing one that was not applied changes nothing (the
   * process ends without having read a COMMIT). What is left (5-11 ms) is the kernel's: the
   * same rules removed with {@code nft} took as long.
   */
  public PreparedUnlock prepareUnlock() throws java.io.IOException {
    ProcessBuilder pb = new ProcessBuilder(Netns.in(netns, "iptables-restore", "-w", "--noflush"));
    pb.redirectErrorStream(true);
    return new PreparedUnlock(pb.start());
  }

  /** See {@link #prepareUnlock}. */
  public final class PreparedUnlock implements AutoCloseable {
    private final Process process;
    private boolean applied;

    private PreparedUnlock(Process process) {
      this.process = process;
    }

    /**
     * Removes Ferry's DROP rules, as {@link #unlock} does; falls back to it if the prepared
     * process failed.
     *
     * @return whether the prepared process removed them (false: the fallback did)
     */
    public boolean apply() {
      applied = true;
      try {
        try (java.io.OutputStream in = process.getOutputStream()) {
          in.write(lockRules(false, false).getBytes(StandardCharsets.US_ASCII));
        }
        if (process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS) && process.exitValue() == 0) {
          return true;
        }
      } catch (java.io.IOException e) {
        // the process died before it read the rules: unlock the usual way
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      process.destroyForcibly();
      unlock();
      return false;
    }

    /** Whether the prepared process still runs (it ends once applied or closed). */
    boolean alive() {
      return process.isAlive();
    }

    @Override
    public void close() {
      if (!applied) {
        process.destroyForcibly();
      }
      try {
        process.getInputStream().close();
      } catch (java.io.IOException e) {
        // closed already
      }
    }
  }

  /**
   * The lock lives in two chains of its own, {@value #IN_CHAIN} and {@value #OUT_CHAIN}, that
   * INPUT and OUTPUT jump to ({@link #create}): one {@code iptables-restore} sets both, since
   * declaring a chain there empties it (this runs inside the frozen window; five iptables runs
   * took ~20 ms).
   */
  private void setLock(boolean in, boolean out) {
    Exec.Result r = Exec.runWithInput(Netns.in(netns, "iptables-restore", "-w", "--noflush"), lockRules(in, out));
    if (!r.ok() && (in || out)) {
      r.check(); // failing to lock is an error; failing to unlock a namespace that is gone is not
    }
  }

  /** iptables-restore input that sets the lock's two chains: DROP in each that is locked. */
  private static String lockRules(boolean in, boolean out) {
    StringBuilder rules = new StringBuilder("*filter\n:" + IN_CHAIN + " - [0:0]\n:" + OUT_CHAIN + " - [0:0]\n");
    if (in) {
      rules.append("-A ").append(IN_CHAIN).append(DROP_RULE).append("\n");
    }
    if (out) {
      rules.append("-A ").append(OUT_CHAIN).append(DROP_RULE).append("\n");
    }
    return rules.append("COMMIT\n").toString();
  }

  /** INPUT and OUTPUT jump to the lock's chains (made empty if missing). Idempotent. */
  private void ensureLockChains() {
    StringBuilder sh = new StringBuilder();
    for (String[] c : new String[][] {{"INPUT", IN_CHAIN}, {"OUTPUT", OUT_CHAIN}}) {
      sh.append("iptables -w -n -L ").append(c[1]).append(" >/dev/null 2>&1 || iptables -w -N ").append(c[1])
          .append(" || exit 1; iptables -w -C ").append(c[0]).append(" -j ").append(c[1]).append(" 2>/dev/null || iptables -w -I ")
          .append(c[0]).append(" -j ").append(c[1]).append(" || exit 1; ");
    }
    Exec.checked(Netns.in(netns, "sh", "-c", sh.toString()));
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
   * {@link #announce} for a sandbox whose eth0 holds no address in the kernel (runsc's netstack
   * serves it; arping refuses to send for an address the interface does not hold): three
   * gratuitous ARP requests written to eth0 through a packet socket, 100 ms apart, in the
   * background. Best effort.
   */
  public void announceFromSandbox(String ip) {
    requireSafe(ip);
    Thread t = new Thread(() -> {
      try (ArpProbe p = ArpProbe.open(netns, "eth0", ip, ip)) {
        for (int i = 0; i < 3; i++) {
          p.send();
          Thread.sleep(100);
        }
      } catch (java.io.IOException | RuntimeException e) {
        org.slf4j.LoggerFactory.getLogger(PodNetwork.class).warn("gratuitous ARP for {} from {} failed: {}", ip, netns,
            e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "ferry-garp-" + netns);
    t.setDaemon(true);
    t.start();
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

}
