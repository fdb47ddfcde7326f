package dev.ferry.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** {@code ferry}: move running, stateful containers between hosts. */
@Command(
    name = "ferry",
    mixinStandardHelpOptions = true,
    version = "ferry 0.1.0",
    description = "Moves running, stateful containers (pods) between hosts with runc and CRIU.",
    subcommands = {
      LabCommand.class,
      RunCommand.class,
      PsCommand.class,
      LogsCommand.class,
      RmCommand.class,
      MigrateCommand.class,
      StatusCommand.class,
      ServiceCommand.class,
      HostsCommand.class,
      DiskCommand.class,
      DemoCommand.class,
      BenchCommand.class,
      ChaosCommand.class,
      AgentCommand.class,
      LoadClientCommand.class,
      dev.ferry.cli.kube.ControllerCommand.class,
      dev.ferry.cli.kube.KubeCommand.class
    })
public final class FerryCommand implements Runnable {
  /** Which lab the command works on; several labs can be up side by side. */
  @Option(names = "--lab", scope = ScopeType.INHERIT, defaultValue = "${env:FERRY_LAB:-ferry}",
      description = "lab to work on (default: $FERRY_LAB or 'ferry')")
  String lab;

  @Override
  public void run() {
    new picocli.CommandLine(this).usage(System.out);
  }

  static void requireRoot() {
    if (!System.getProperty("os.name").toLowerCase().contains("linux")) {
      throw new IllegalStateException("Ferry needs Linux (runc, CRIU, network namespaces)");
    }
    if (!"root".equals(System.getProperty("user.name"))) {
      throw new IllegalStateException("run as root: Ferry creates network namespaces, containers and checkpoints");
    }
  }
}
