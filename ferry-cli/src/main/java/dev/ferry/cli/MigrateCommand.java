package dev.ferry.cli;

import dev.ferry.api.Json;
import dev.ferry.api.MigrationReport;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry migrate NAME --to HOST}. */
@Command(name = "migrate", mixinStandardHelpOptions = true,
    description = "Moves a running pod to another host with its memory, processes, TCP connections, files and identity.")
final class MigrateCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Parameters(index = "0", description = "pod name")
  String pod;

  /** Target host. */
  @Option(names = "--to", required = true, description = "target host")
  String target;

  /** Strategy. */
  @Option(names = "--strategy", defaultValue = "cold", description = "migration strategy: cold (default)")
  String strategy;

  /** Where to write the report. */
  @Option(names = "--json-report", description = "write the migration report (JSON) to this file")
  Path jsonReport;

  /** Faults to inject (for tests). */
  @Option(names = "--inject-fault", hidden = true)
  List<String> faults = new ArrayList<>();

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      MigrationReport r;
      int code = 0;
      try {
        r = s.coordinator.migrate(new MigrationOptions(pod, target, strategy, faults), new dev.ferry.cli.demo.DemoRunner.ConsoleProgressPrinter(System.out));
      } catch (MigrationFailedException e) {
        r = e.report();
        System.err.println("ferry: migration failed: " + r.error);
        code = 1;
      }
      if (jsonReport != null) {
        Json.writeFile(jsonReport.toAbsolutePath(), r);
      }
      if (code == 0) {
        System.out.printf("migrated %s from %s to %s: frozen %d ms, %d bytes moved, total %d ms; ip %s, uid %s%n", r.pod,
            r.sourceHost, r.targetHost, r.frozenMs, r.bytesTransferred, r.totalMs, r.ipAfter, r.uidAfter);
      }
      return code;
    }
  }
}
