package dev.ferry.cli;

import dev.ferry.agent.AgentConfig;
import dev.ferry.agent.AgentDaemon;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry agent ...}: the per-host daemon; `ferry lab up` starts one per host. */
@Command(name = "agent", mixinStandardHelpOptions = true, hidden = true, description = "Runs a Ferry agent (the per-host daemon).")
final class AgentCommand implements Callable<Integer> {
  @Option(names = "--host", required = true) String host;
  @Option(names = "--name-prefix", required = true) String namePrefix;
  @Option(names = "--state-dir", required = true) Path stateDir;
  @Option(names = "--socket", required = true) Path socket;
  @Option(names = "--listen", required = true) String listen;
  @Option(names = "--api-port", defaultValue = "0") int apiPort;
  @Option(names = "--data-port", defaultValue = "7071") int dataPort;
  @Option(names = "--bridge", defaultValue = "br0") String bridge;
  @Option(names = "--memory-mib", defaultValue = "8192") long memoryMiB;

  @Option(names = "--bandwidth-cap", defaultValue = "${env:FERRY_HOST_BANDWIDTH_MBPS:-0}",
      description = "MB/s this host may send to other agents, all migrations together; 0 for no cap "
          + "(default: $FERRY_HOST_BANDWIDTH_MBPS, which `lab up` passes on)")
  long bandwidthCapMBps;

  @Option(names = "--transfer-streams", defaultValue = "${env:FERRY_TRANSFER_STREAMS:-1}",
      description = "TCP connections each transfer to another agent uses, 1 to 16: more where one stream "
          + "cannot fill the link or one core cannot keep up (default: $FERRY_TRANSFER_STREAMS, else 1)")
  int transferStreams;

  @Override
  public Integer call() throws Exception {
    FerryCommand.requireRoot();
    if (bandwidthCapMBps < 0 || bandwidthCapMBps > 1_000_000) {
      throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this),
          "--bandwidth-cap must be between 0 (no cap) and 1000000 MB/s, got " + bandwidthCapMBps);
    }
    if (transferStreams < 1 || transferStreams > 16) {
      throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this),
          "--transfer-streams must be between 1 and 16, got " + transferStreams);
    }
    AgentDaemon.run(new AgentConfig(host, namePrefix, stateDir, socket, listen, apiPort, dataPort, bridge, memoryMiB,
        bandwidthCapMBps * 1_000_000, transferStreams));
    return 0;
  }
}
