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
    description = "Moves a running pod to another host with its memory, processes, TCP connections, files and identity.",
    subcommands = MigrateCommand.Cancel.class)
final class MigrateCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Parameters(index = "0", arity = "0..1", description = "pod name")
  String pod;

  /** Target host. */
  @Option(names = "--to", description = "target host (required)")
  String target;

  /** Bandwidth cap, so that a mass migration does not starve production traffic. */
  @Option(names = "--bandwidth", defaultValue = "0", description = "cap on the transfer rate in MB/s (default: no cap)")
  long bandwidthMBps;

  /** Strategy. */
  @Option(names = "--strategy", defaultValue = "auto", description = "auto (default: chosen from the pod's memory and"
      + " --max-freeze), cold (stop and copy), precopy (memory copied in rounds while the pod runs, then only what changed),"
      + " postcopy (restore at once, memory follows; the pod is lost if the source"
      + " fails before all pages arrived) or hybrid (pre-copy rounds, then post-copy of what changed since)")
  String strategy;

  /** Freeze budget for auto. */
  @Option(names = "--max-freeze", defaultValue = "0", description = "freeze budget in ms for --strategy auto (default: none)")
  long maxFreezeMs;

  /** Lets auto choose post-copy. */
  @Option(names = "--allow-postcopy", description = "let --strategy auto choose post-copy to keep the budget")
  boolean allowPostcopy;

  /** Policy when no strategy keeps the budget. */
  @Option(names = "--on-budget-miss", defaultValue = "proceed",
      description = "when --max-freeze cannot be kept: proceed (default, and say so), throttle (cap the pod's CPU during"
          + " pre-copy so that its writes slow down) or abort (before anything is frozen)")
  String onBudgetMiss;

  /** Pre- and post-migration hooks. */
  @picocli.CommandLine.Mixin HookOptions hookOptions = new HookOptions();

  /** Where to write the report. */
  @Option(names = "--runtime", description = "the runtime the pod is expected on (runc or runsc); a pod on another one is"
      + " refused: migrating between runtimes is not possible")
  String runtime;

  @Option(names = "--json-report", description = "write the migration report (JSON) to this file")
  Path jsonReport;

  /** Faults to inject (for tests). */
  @Option(names = "--inject-fault", hidden = true)
  List<String> faults = new ArrayList<>();

  @Override
  public Integer call() {
    if (pod == null || target == null) {
      throw new IllegalArgumentException("usage: ferry migrate POD --to HOST (or: ferry migrate cancel ID)");
    }
    try (LabSession s = LabSession.open(parent.lab)) {
      MigrationReport r;
      int code = 0;
      try {
        r = s.coordinator.migrate(new MigrationOptions(pod, target, strategy, faults, bandwidthMBps, maxFreezeMs,
                allowPostcopy, onBudgetMiss).withRuntime(runtime), hookOptions.hooks(),
            new dev.ferry.cli.demo.DemoRunner.ConsoleProgressPrinter(System.out));
      } catch (MigrationFailedException e) {
        r = e.report();
        System.err.println("ferry: migration failed: " + r.error);
        code = 1;
      }
      if (jsonReport != null) {
        Json.writeFile(jsonReport.toAbsolutePath(), r);
      }
      if (code == 0) {
        System.out.printf("migrated %s from %s to %s (%s): frozen %d ms (predicted %d), %d bytes moved, total %d ms; ip %s,"
            + " uid %s%n", r.pod, r.sourceHost, r.targetHost, r.strategy, r.frozenMs, r.predictedFrozenMs, r.bytesTransferred,
            r.totalMs, r.ipAfter, r.uidAfter);
        if (r.tcpConnectionNote != null) {
          System.out.println("clients' TCP connections were not kept: " + r.tcpConnectionNote);
        }
      }
      return code;
    }
  }

  /** {@code ferry migrate cancel ID}. */
  @Command(name = "cancel", mixinStandardHelpOptions = true,
      description = "Cancels a migration before its commit point: the source keeps running, the target is cleaned up. "
          + "Waits until the migration has rolled back.")
  static final class Cancel implements Callable<Integer> {
    @ParentCommand MigrateCommand migrate;

    @Parameters(index = "0", description = "migration id (see: ferry status)")
    String id;

    @Override
    public Integer call() throws InterruptedException {
      try (LabSession s = LabSession.open(migrate.parent.lab)) {
        var m = s.store.migration(id).orElseThrow(() -> new IllegalArgumentException("unknown migration '" + id + "'; see: ferry status"));
        if (m.phase().isFinal()) {
          throw new IllegalStateException("migration " + id + " has ended already (" + m.phase().displayName() + ")");
        }
        if (m.committed()) {
          throw new IllegalStateException("migration " + id + " is past its commit point: the pod runs on " + m.target()
              + "; it can no longer be cancelled (migrate it back instead)");
        }
        s.store.requestCancel(id);
        System.out.println("cancel of " + id + " requested; waiting for it to roll back");
        long deadline = System.currentTimeMillis() + 300_000;
        while (System.currentTimeMillis() < deadline) {
          var now = s.store.migration(id).orElseThrow();
          if (now.phase().isFinal()) {
            System.out.println("migration " + id + ": " + now.phase().displayName()
                + (now.committed() ? " (it reached its commit point before the cancel)" : ""));
            return now.phase() == dev.ferry.api.MigrationPhase.ROLLED_BACK ? 0 : 1;
          }
          Thread.sleep(200);
        }
        throw new IllegalStateException("migration " + id + " did not end within 300 s; see: ferry status " + id);
      }
    }
  }
}
