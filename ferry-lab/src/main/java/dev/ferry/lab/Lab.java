package dev.ferry.lab;

import dev.ferry.agent.AgentClient;
import dev.ferry.runtime.JavaCommand;
import dev.ferry.api.Json;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.Netns;
import dev.ferry.runtime.Procs;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Several hosts on this one machine: network namespaces on a private bridge, each with its
 * own agent JVM. The machine's own network is never touched: the bridge itself lives in a
 * namespace of the lab's.
 */
public final class Lab {
  private static final Logger LOG = LoggerFactory.getLogger(Lab.class);
  private static final Pattern LAB_NAME = Pattern.compile("[a-z][a-z0-9]{0,11}");
  private static final Pattern HOST_NAME = Pattern.compile("[a-z][a-z0-9-]{0,8}[a-z0-9]");
  /** Main class the agents are started with (the CLI's; a name, not a compile dependency). */
  private static final String MAIN = "dev.ferry.cli.Main";
  private static final Path STATE_ROOT = Path.of(System.getProperty("ferry.state.root", "/var/lib/ferry"));
  private static final Path RUN_ROOT = Path.of(System.getProperty("ferry.run.root", "/run/ferry"));

  private final LabConfig config;

  private Lab(LabConfig config) {
    this.config = config;
  }

  public LabConfig config() {
    return config;
  }

  /** The lab of that name if it is up (its lab.json exists). */
  public static Optional<Lab> find(String name) {
    checkName(name);
    Path f = STATE_ROOT.resolve(name).resolve("lab.json");
    return Files.exists(f) ? Optional.of(new Lab(Json.readFile(f, LabConfig.class))) : Optional.empty();
  }

  /** The lab of that name, or an error that says how to bring it up. */
  public static Lab require(String name) {
    return find(name).orElseThrow(() -> new IllegalStateException("lab '" + name + "' is not up; run: ferry lab up"
        + ("ferry".equals(name) ? "" : " --lab " + name)));
  }

  public static void checkName(String name) {
    if (name == null || !LAB_NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("lab name '" + name + "' is invalid: 1-12 lower-case letters and digits, starting with a letter");
    }
  }

  /**
   * Brings the lab up, or completes it (restarting agents that died). Idempotent.
   *
   * @param hosts host names, e.g. [host-a, host-b]
   * @param memoryCapacityMiB memory each host offers to pods
   */
  public static Lab up(String name, List<String> hosts, long memoryCapacityMiB) {
    return up(name, hosts, memoryCapacityMiB, LabConfig.HostEntry.DEFAULT_POD_SLOTS);
  }

  /**
   * Brings the lab up with a capacity per host: {@code memoryCapacityMiB} and {@code podSlots}
   * pods (placeholders count), its agents talking to each other over mutual TLS. Idempotent; the
   * capacity of a lab that is up stays as it was.
   */
  public static Lab up(String name, List<String> hosts, long memoryCapacityMiB, int podSlots) {
    return up(name, hosts, memoryCapacityMiB, podSlots, true);
  }

  /**
   * As {@link #up(String, List, long, int)}; with {@code tls} the lab's CA issues each host a
   * certificate and agents move images and memory to each other over mutual TLS (for the lab's
   * life: a later {@code up} of the same lab keeps the certificates the hosts have); without, in
   * clear.
   */
  public static Lab up(String name, List<String> hosts, long memoryCapacityMiB, int podSlots, boolean tls) {
    checkName(name);
    if (podSlots < 1 || podSlots > 250) {
      throw new IllegalArgumentException("pod slots per host must be 1 .. 250, got " + podSlots);
    }
    if (hosts.isEmpty() || hosts.size() > 20) {
      throw new IllegalArgumentException("a lab needs 1 to 20 hosts, got " + hosts.size());
    }
    for (String h : hosts) {
      if (!HOST_NAME.matcher(h).matches()) {
        throw new IllegalArgumentException("host name '" + h + "' is invalid: 2-10 lower-case letters, digits and '-'");
      }
    }
    if (hosts.stream().distinct().count() != hosts.size()) {
      throw new IllegalArgumentException("host names must be different: " + hosts);
    }
    Optional<Lab> existing = find(name);
    if (existing.isPresent()) {
      List<String> had = existing.get().config.hosts().stream().map(LabConfig.HostEntry::name).toList();
      if (!had.equals(hosts)) {
        throw new IllegalArgumentException("lab '" + name + "' is up with hosts " + had + "; run 'ferry lab down' first to change them");
      }
    }
    LabConfig cfg = existing.map(Lab::config).orElseGet(() -> plan(name, hosts, memoryCapacityMiB, podSlots));
    Lab lab = new Lab(cfg);
    Json.writeFile(cfg.stateDir().resolve("lab.json"), cfg);
    try {
      lab.mountRunDir();
      lab.createNetwork();
      if (tls) {
        lab.issueCertificates();
      }
      lab.startAgents();
    } catch (RuntimeException e) {
      LOG.error("lab {} could not come up, taking it down: {}", name, e.getMessage());
      down(name);
      throw e;
    }
    return lab;
  }

  private static LabConfig plan(String name, List<String> hosts, long memoryCapacityMiB, int podSlots) {
    String net = "10.77";
    Path state = STATE_ROOT.resolve(name);
    Path run = RUN_ROOT.resolve(name);
    List<LabConfig.HostEntry> entries = new ArrayList<>();
    for (int i = 0; i < hosts.size(); i++) {
      String h = hosts.get(i);
      Path dir = run.resolve("hosts").resolve(h);
      entries.add(new LabConfig.HostEntry(h, name + "-" + h, net + ".0." + (11 + i), dir.resolve("agent.sock"), 0, 7071,
          dir, memoryCapacityMiB, podSlots));
    }
    return new LabConfig(name, name + "-net", net, entries, name + "-client", net + ".0.100", state, run);
  }

  /**
   * The agents' working directories (bundles, checkpoint images) live in a tmpfs of the
   * lab's: images of a pod's whole memory must not fill the machine's disk, restores read
   * them at memory speed, and they are readable by root only. Idempotent.
   */
  private void mountRunDir() {
    try {
      Files.createDirectories(config.runDir());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (Files2.mountsUnder(config.runDir()).stream().noneMatch(m -> m.equals(config.runDir().toString()))) {
      Exec.checked("mount", "-t", "tmpfs", "-o", "mode=0700,size=75%", "ferry-" + config.name(), config.runDir().toString());
    }
  }

  private void createNetwork() {
    String br = config.bridgeNs();
    Netns.add(br);
    ensureLink(br, "labbr", "ip", "-n", br, "link", "add", "labbr", "type", "bridge");
    Exec.checked("ip", "-n", br, "link", "set", "labbr", "up");
    for (LabConfig.HostEntry h : config.hosts()) {
      Netns.add(h.netns());
      String port = "h-" + h.name();
      ensureLink(br, port, "ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "uplink", "netns", h.netns());
      Exec.checked("ip", "-n", br, "link", "set", port, "master", "labbr", "up");
      // pods join the host's bridge br0, which is uplinked to the lab bridge: one flat L2
      // network, so a pod's IP and MAC can move from host to host
      ensureLink(h.netns(), "br0", "ip", "-n", h.netns(), "link", "add", "br0", "type", "bridge");
      // a bridge takes the lowest MAC of its ports unless given one: pods' veths come and go,
      // and the host's address would move to another MAC under its neighbours' feet
      Exec.checked("ip", "-n", h.netns(), "link", "set", "br0", "address", hostMac(config.hosts().indexOf(h)));
      Exec.checked("ip", "-n", h.netns(), "link", "set", "uplink", "master", "br0", "up");
      Exec.run("ip", "-n", h.netns(), "addr", "add", h.ip() + "/" + config.prefixLength(), "dev", "br0");
      Exec.checked("ip", "-n", h.netns(), "link", "set", "br0", "up");
    }
    Netns.add(config.clientNs());
    ensureLink(br, "c-client", "ip", "-n", br, "link", "add", "c-client", "type", "veth", "peer", "name", "eth0", "netns",
        config.clientNs());
    Exec.checked("ip", "-n", br, "link", "set", "c-client", "master", "labbr", "up");
    Exec.run("ip", "-n", config.clientNs(), "addr", "add", config.clientIp() + "/" + config.prefixLength(), "dev", "eth0");
    Exec.checked("ip", "-n", config.clientNs(), "link", "set", "eth0", "up");
  }

  private static String hostMac(int index) {
    return String.format("02:fa:00:00:00:%02x", index + 1);
  }

  private static void ensureLink(String ns, String link, String... create) {
    if (!Exec.run("ip", "-n", ns, "link", "show", link).ok()) {
      Exec.checked(create);
    }
  }

  private void startAgents() {
    for (LabConfig.HostEntry h : config.hosts()) {
      if (!agentAlive(h)) {
        startAgent(h);
      }
    }
    for (LabConfig.HostEntry h : config.hosts()) {
      waitReady(h);
    }
  }

  /** Starts the agent of one host in that host's network namespace (network only: same mounts). */
  public void startAgent(LabConfig.HostEntry h) {
    startAgent(h, java.util.Map.of());
  }

  /** Where a host's agent finds its TLS identity (see {@link dev.ferry.transfer.PeerTls#load}). */
  public static Path tlsDir(LabConfig.HostEntry h) {
    return h.stateDir().resolve("tls");
  }

  /**
   * The lab's CA (made at its first {@code up}, key readable by root only) issues each host a
   * certificate for its data port: agents then move images to each other over mutual TLS and
   * refuse peers the CA did not sign.
   */
  private void issueCertificates() {
    try {
      dev.ferry.transfer.LabCa ca = dev.ferry.transfer.LabCa.ensure(config.stateDir().resolve("ca"), "ferry lab " + config.name());
      for (LabConfig.HostEntry h : config.hosts()) {
        ca.issue(tlsDir(h), h.name(), h.ip());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Starts the agent of one host with extra environment (e.g. FERRY_CRIU for tests). */
  public void startAgent(LabConfig.HostEntry h, java.util.Map<String, String> env) {
    try {
      Files.createDirectories(h.stateDir());
      // the JVM's temporary files (lz4-java unpacks its native library there) go with the host's
      // state at lab down: an agent killed there never deletes them itself
      Path tmp = Files.createDirectories(h.stateDir().resolve("tmp"));
      List<String> cmd = new ArrayList<>(List.of("nsenter", "--net=" + Netns.path(h.netns()), "setsid"));
      cmd.addAll(JavaCommand.of("512m", tmp, MAIN, List.of("agent",
          "--host", h.name(), "--name-prefix", h.netns(), "--state-dir", h.stateDir().toString(),
          "--socket", h.socket().toString(), "--listen", h.ip(), "--api-port", String.valueOf(h.apiPort()),
          "--data-port", String.valueOf(h.dataPort()), "--memory-mib", String.valueOf(h.memoryCapacityMiB()))));
      ProcessBuilder pb = new ProcessBuilder(cmd);
      // INFO unless FERRY_AGENT_LOG_LEVEL asks for more (DEBUG times each exec and step inside the agents)
      pb.environment().put("FERRY_LOG_LEVEL", System.getenv().getOrDefault("FERRY_AGENT_LOG_LEVEL", "INFO"));
      pb.environment().putAll(env);
      pb.redirectInput(new File("/dev/null"));
      pb.redirectOutput(ProcessBuilder.Redirect.appendTo(h.logFile().toFile()));
      pb.redirectErrorStream(true);
      Process p = pb.start();
      Files.writeString(h.pidFile(), Long.toString(p.pid()));
      LOG.info("agent of {} started (pid {}), log {}", h.name(), p.pid(), h.logFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start the agent of " + h.name(), e);
    }
  }

  public void waitReady(LabConfig.HostEntry h) {
    long deadline = System.currentTimeMillis() + 90_000;
    String last = "";
    while (System.currentTimeMillis() < deadline) {
      if (Files.exists(h.socket())) {
        try (AgentClient c = client(h.name())) {
          c.info();
          return;
        } catch (RuntimeException e) {
          last = e.getMessage();
        }
      }
      if (!agentAlive(h)) {
        throw new IllegalStateException("agent of " + h.name() + " exited during start-up; see " + h.logFile() + ":\n" + tail(h.logFile()));
      }
      sleep(200);
    }
    throw new IllegalStateException("agent of " + h.name() + " not ready after 90 s (" + last + "); see " + h.logFile());
  }

  /** True when the agent process recorded for the host is alive. */
  public boolean agentAlive(LabConfig.HostEntry h) {
    return agentPid(h).flatMap(ProcessHandle::of).map(ProcessHandle::isAlive).orElse(false);
  }

  public Optional<Long> agentPid(LabConfig.HostEntry h) {
    try {
      return Files.exists(h.pidFile()) ? Optional.of(Long.parseLong(Files.readString(h.pidFile()).strip())) : Optional.empty();
    } catch (IOException | NumberFormatException e) {
      return Optional.empty();
    }
  }

  /** A client of one host's agent (close it after use). */
  public AgentClient client(String host) {
    return new AgentClient(host, config.host(host).socket());
  }

  /** A command line that runs {@code command} in the lab's client namespace. */
  public List<String> inClient(List<String> command) {
    List<String> c = new ArrayList<>(List.of("nsenter", "--net=" + Netns.path(config.clientNs())));
    c.addAll(command);
    return c;
  }

  /**
   * Removes everything of the lab: agents, containers, namespaces, cgroups, files. Idempotent,
   * and works after a crash or a kill -9 in the middle of a migration.
   */
  public static void down(String name) {
    checkName(name);
    String prefix = name + "-";
    Path run = RUN_ROOT.resolve(name);
    Path state = STATE_ROOT.resolve(name);
    // 1. agents first, so that nothing re-creates what we remove
    find(name).ifPresent(lab -> lab.config.hosts().forEach(h -> lab.agentPid(h).flatMap(ProcessHandle::of)
        .ifPresent(ProcessHandle::destroyForcibly)));
    Exec.run("pkill", "-9", "-f", "dev.ferry.cli.Main agent .*--state-dir " + run + "/");
    // then whatever outlived them and works in the lab's directories: CRIU's page daemons, a lazy
    // dump an agent killed mid-migration left holding a frozen tree, and their children
    String mark = run + "/";
    Procs.withCommandLineContaining(mark).forEach(p -> {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    });
    // 2. containers (pods, sandboxes, restored copies)
    for (String id : Exec.run("runc", "list", "-q").stdout().split("\n")) {
      if (id.strip().startsWith(prefix)) {
        Exec.run("runc", "kill", id.strip(), "KILL");
        Exec.run("runc", "delete", "-f", id.strip());
      }
    }
    // 3. namespaces: pods' first, then hosts, client and bridge (veths go with them)
    List<String> all = Netns.list(prefix);
    all.sort((a, b) -> Integer.compare(b.length(), a.length()));
    for (String ns : all) {
      Netns.delete(ns);
    }
    // 4. cgroups runc left as parents, and files
    removeCgroups("ferry/" + prefix);
    Files2.deleteTree(run);
    Files2.deleteTree(state);
  }

  private static void removeCgroups(String relPrefix) {
    Exec.run("sh", "-c", "for d in /sys/fs/cgroup/*/ferry /sys/fs/cgroup/ferry; do [ -d \"$d\" ] || continue; "
        + "find \"$d\" -depth -type d -path \"*/" + relPrefix + "*\" -exec rmdir {} \\; 2>/dev/null; "
        + "rmdir \"$d\" 2>/dev/null; done; true");
  }

  static String tail(Path f) {
    try {
      List<String> lines = Files.readAllLines(f);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    } catch (IOException e) {
      return "(no log)";
    }
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
