package dev.ferry.cli;

import dev.ferry.cli.demo.LoadClient;
import dev.ferry.cli.demo.LoadResult;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry load-client}: the demo's Redis writer; runs in the lab's client namespace. */
@Command(name = "load-client", mixinStandardHelpOptions = true, hidden = true,
    description = "Writes keys to Redis over one connection until CONTROL/stop exists, then verifies them.")
final class LoadClientCommand implements Callable<Integer> {
  @Option(names = "--ip", required = true) String ip;
  @Option(names = "--port", defaultValue = "6379") int port;
  @Option(names = "--control", required = true) Path control;
  @Option(names = "--populate-mib", defaultValue = "0") long populateMiB;
  @Option(names = "--reconnect", description = "open a new connection and go on writing when the connection breaks")
  boolean reconnect;

  @Override
  public Integer call() throws Exception {
    LoadResult r = new LoadClient(ip, port, control, populateMiB).reconnecting(reconnect).run();
    return r.verified ? 0 : 1;
  }
}
