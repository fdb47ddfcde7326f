package dev.ferry.lab;

import java.nio.file.Path;
import java.util.List;

/**
 * A lab as it was brought up (stored as lab.json): hosts as network namespaces on a private
 * bridge that lives in a namespace of its own, plus a client namespace.
 *
 * @param name lab name; every namespace, container and directory of the lab starts with it
 * @param bridgeNs namespace that holds the lab bridge
 * @param networkPrefix first two octets of the lab network, e.g. "10.77"; the lab uses /16
 * @param hosts the hosts
 * @param clientNs namespace of the client (the demo's load generator, users' tools)
 * @param clientIp the client's address
 * @param stateDir durable state: lab.json and the coordinator's store
 * @param runDir agents' working directories: pods, bundles, images (tmpfs)
 */
public record LabConfig(
    String name,
    String bridgeNs,
    String networkPrefix,
    List<HostEntry> hosts,
    String clientNs,
    String clientIp,
    Path stateDir,
    Path runDir) {

  /**
   * One lab host and its agent.
   *
   * @param name host name, e.g. "host-a"
   * @param netns its network namespace
   * @param ip its address on the lab network
   * @param socket its agent's API socket
   * @param apiPort its agent's API port on {@code ip}, 0: the API is on the Unix socket only
   * @param dataPort its agent's image port on {@code ip}
   * @param stateDir its agent's state directory
   * @param memoryCapacityMiB memory pods may reserve on it
   * @param podSlots how many pods (and placeholders) it can hold; 0 in a lab from before slots: {@link #DEFAULT_POD_SLOTS}
   */
  public record HostEntry(
      String name, String netns, String ip, Path socket, int apiPort, int dataPort, Path stateDir, long memoryCapacityMiB,
      int podSlots) {
    /** Pod slots of a host when none were given. */
    public static final int DEFAULT_POD_SLOTS = 16;

    /** Pod slots, {@link #DEFAULT_POD_SLOTS} when none were recorded. */
    public int slots() {
      return podSlots > 0 ? podSlots : DEFAULT_POD_SLOTS;
    }

    public Path pidFile() {
      return stateDir.resolve("agent.pid");
    }

    public Path logFile() {
      return stateDir.resolve("agent.log");
    }
  }

  public HostEntry host(String hostName) {
    return hosts.stream().filter(h -> h.name().equals(hostName)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("unknown host '" + hostName + "'; lab " + name + " has "
            + hosts.stream().map(HostEntry::name).toList()));
  }

  /** Prefix of all namespaces, containers and veths of this lab. */
  public String prefix() {
    return name + "-";
  }

  public int prefixLength() {
    return 16;
  }

  /** First three octets of the pods' addresses, e.g. "10.77.1.". */
  public String podRange() {
    return networkPrefix + ".1.";
  }

  /** First three octets of service VIPs, e.g. "10.77.2.". */
  public String vipRange() {
    return networkPrefix + ".2.";
  }
}
