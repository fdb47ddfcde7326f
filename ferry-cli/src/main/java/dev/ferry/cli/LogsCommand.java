package dev.ferry.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry logs NAME}. */
@Command(name = "logs", mixinStandardHelpOptions = true,
    description = "Prints a pod container's output (stdout and stderr); the log moves with the pod.")
final class LogsCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Parameters(index = "0", description = "pod name")
  String name;

  /** Container, when the pod has several. */
  @Option(names = {"-c", "--container"}, description = "container name (default: the first)")
  String container;

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      System.out.print(s.coordinator.logs(name, container));
      return 0;
    }
  }
}
