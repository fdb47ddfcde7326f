package dev.ferry.cli;

import dev.ferry.migration.MigrationRecord;
import java.time.Instant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry status [ID]}. */
@Command(name = "status", mixinStandardHelpOptions = true, description = "Shows current and past migrations, or one in detail.")
final class StatusCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Parameters(index = "0", arity = "0..1", description = "migration id (default: all)")
  String id;

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      if (id != null) {
        MigrationRecord m = s.store.migration(id).orElseThrow(() -> new IllegalArgumentException("unknown migration " + id));
        System.out.println("migration " + m.id() + ": pod " + m.pod() + " " + m.source() + " -> " + m.target() + ", "
            + m.phase().displayName() + (m.committed() ? " (committed)" : ""));
        s.store.steps(m.id()).forEach((k, v) -> System.out.println("  step " + k + ": " + v));
        if (m.error() != null) {
          System.out.println("  error: " + m.error());
        }
        if (m.reportJson() != null) {
          System.out.println(m.reportJson());
        }
        return 0;
      }
      System.out.printf("%-26s %-14s %-8s %-8s %-12s %s%n", "MIGRATION", "POD", "FROM", "TO", "PHASE", "STARTED");
      for (MigrationRecord m : s.store.migrations()) {
        System.out.printf("%-26s %-14s %-8s %-8s %-12s %s%n", m.id(), m.pod(), m.source(), m.target(), m.phase().displayName(),
            Instant.ofEpochMilli(m.createdAt()));
      }
      return 0;
    }
  }
}
