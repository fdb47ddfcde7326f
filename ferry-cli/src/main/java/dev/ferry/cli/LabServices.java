package dev.ferry.cli;

import dev.ferry.lab.LabConfig;

import dev.ferry.migration.ServiceNetwork;
import dev.ferry.runtime.CommandFailedException;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Service VIPs of a lab, served by the kernel: nftables DNAT in the lab's client namespace
 * (table {@code ip ferry}, one chain per service jumped to from the nat output hook). A
 * switch replaces a service's chain in one nftables transaction, so that no packet ever sees
 * two backends or none; established connections keep their translation in conntrack. The
 * rules go with the client namespace when the lab goes down.
 */
public final class LabServices implements ServiceNetwork {
  private static final Pattern NAME = Pattern.compile("[a-z0-9-]{1,32}");
  private static final Pattern IP = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");
  private final LabConfig config;

  public LabServices(LabConfig config) {
    this.config = config;
  }

  @Override
  public String vipRange() {
    return config.vipRange();
  }

  /**
   * One nftables transaction (one process: it may run in a migration's critical path): the
   * output hook looks the destination up in the verdict map {@code vips}, whose element for
   * the VIP jumps to the service's chain, which holds its one DNAT rule.
   */
  @Override
  public synchronized void route(String service, String vip, int port, String backendIp, String backendHost) {
    check(service, vip, backendIp);
    String chain = chain(service);
    nft("add table ip ferry\n"
        + "add map ip ferry vips { type ipv4_addr : verdict ; }\n"
        + "add chain ip ferry output { type nat hook output priority -100 ; }\n"
        + "flush chain ip ferry output\n"
        + "add rule ip ferry output ip daddr vmap @vips\n"
        + "add chain ip ferry " + chain + "\n"
        + "flush chain ip ferry " + chain + "\n"
        + "add rule ip ferry " + chain + " ip daddr " + vip + " tcp dport " + port + " dnat to " + backendIp + ":" + port
        + " comment \"service " + service + " -> pod on " + backendHost.replaceAll("[^a-z0-9-]", "") + "\"\n"
        + "add element ip ferry vips { " + vip + " : jump " + chain + " }\n");
  }

  @Override
  public synchronized void remove(String service, String vip) {
    if (!NAME.matcher(service).matches() || !IP.matcher(vip).matches() || !Netns.exists(config.clientNs())) {
      return;
    }
    String chain = chain(service);
    if (!Exec.run(Netns.in(config.clientNs(), "nft", "list", "chain", "ip", "ferry", chain)).ok()) {
      return;
    }
    String map = Exec.run(Netns.in(config.clientNs(), "nft", "list", "map", "ip", "ferry", "vips")).stdout();
    nft((map.contains(vip + " : jump " + chain) ? "delete element ip ferry vips { " + vip + " }\n" : "")
        + "flush chain ip ferry " + chain + "\n" + "delete chain ip ferry " + chain + "\n");
  }

  /** The DNAT rules as nftables prints them (for `ferry service ls` and tests). */
  public String rules() {
    return Exec.run(Netns.in(config.clientNs(), "nft", "list", "table", "ip", "ferry")).stdout();
  }

  private static String chain(String service) {
    return "svc-" + service;
  }

  private static void check(String service, String vip, String backendIp) {
    if (!NAME.matcher(service).matches() || !IP.matcher(vip).matches() || !IP.matcher(backendIp).matches()) {
      throw new IllegalArgumentException("bad service '" + service + "' " + vip + " -> " + backendIp);
    }
  }

  /** Applies an nftables script in the client namespace, atomically (nft -f is one transaction). */
  private void nft(String script) {
    try {
      Path f = Files.createTempFile("ferry-nft", ".nft");
      try {
        Files.writeString(f, script);
        Exec.Result r = Exec.run(Netns.in(config.clientNs(), "nft", "-f", f.toString()));
        if (!r.ok()) {
          throw new CommandFailedException(new Exec.Result(List.of("nft", "-f", script), r.exitCode(), r.stdout(), r.stderr()));
        }
      } finally {
        Files.deleteIfExists(f);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
