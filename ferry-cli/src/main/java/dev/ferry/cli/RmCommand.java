package dev.ferry.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry rm NAME}. */
@Command(name = "rm", mixinStandardHelpOptions = true, description = "Stops and removes a pod and releases its identity.")
final class RmCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Parameters(index = "0", description = "pod name")
  String name;

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      s.coordinator.deletePod(name);
      System.out.println("pod " + name + " removed");
      return 0;
    }
  }
}
