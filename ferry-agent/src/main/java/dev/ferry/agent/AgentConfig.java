package dev.ferry.agent;

import java.nio.file.Path;

/**
 * How one agent runs.
 *
 * @param host host name in the lab, e.g. "host-a"
 * @param namePrefix prefix of every namespace and container this agent creates, e.g. "ferry-host-a";
 *     unique per host so that hosts sharing one machine never collide
 * @param stateDir where pods, bundles and checkpoint images live
 * @param socket Unix socket of the HTTP/JSON API
 * @param listenIp address on the lab network (API on {@link #apiPort}, images on {@link #dataPort})
 * @param apiPort TCP port of the same API, for other hosts; 0 for none (Unix socket only)
 * @param dataPort TCP port that receives checkpoint images from source agents
 * @param hostBridge bridge in the host namespace that pod interfaces join
 * @param memoryCapacityMiB memory pods may reserve here
 * @param hostBandwidthBytesPerSecond cap on everything this host sends to other agents, all
 *     migrations together (each migration may have a lower cap of its own); 0 for none
 * @param transferStreams connections each transfer of checkpoint files to another agent uses
 *     (at least 1): more where one stream cannot fill the link or one core cannot keep up
 */
public record AgentConfig(
    String host,
    String namePrefix,
    Path stateDir,
    Path socket,
    String listenIp,
    int apiPort,
    int dataPort,
    String hostBridge,
    long memoryCapacityMiB,
    long hostBandwidthBytesPerSecond,
    int transferStreams) {

  public AgentConfig {
    if (transferStreams < 1) {
      throw new IllegalArgumentException("transfer streams must be at least 1, got " + transferStreams);
    }
  }

  /** Without a host-wide bandwidth cap, one stream per transfer. */
  public AgentConfig(String host, String namePrefix, Path stateDir, Path socket, String listenIp, int apiPort,
      int dataPort, String hostBridge, long memoryCapacityMiB) {
    this(host, namePrefix, stateDir, socket, listenIp, apiPort, dataPort, hostBridge, memoryCapacityMiB, 0, 1);
  }
}
