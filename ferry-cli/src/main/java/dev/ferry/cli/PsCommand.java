package dev.ferry.cli;

import dev.ferry.migration.Coordinator;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/** {@code ferry ps}. */
@Command(name = "ps", mixinStandardHelpOptions = true, description = "Lists pods: host, identity and state.")
final class PsCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      System.out.printf("%-16s %-8s %-12s %-18s %-36s %s%n", "POD", "HOST", "IP", "MAC", "UID", "STATE");
      for (Coordinator.PodView v : s.coordinator.pods()) {
        var id = v.record().spec().identity();
        String state = v.status() == null ? "unknown (" + v.problem() + ")"
            : v.record().state().equals("running") ? (v.status().running() ? "running" : "NOT RUNNING " + v.status().containers())
            : v.record().state();
        System.out.printf("%-16s %-8s %-12s %-18s %-36s %s%n", id.name(), v.record().host(), id.ip(), id.mac(), id.uid(), state);
      }
      return 0;
    }
  }
}
