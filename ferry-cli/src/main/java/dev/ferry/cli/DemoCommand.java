package dev.ferry.cli;

import dev.ferry.api.Json;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry demo}: the whole story in one command. */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Brings up a lab, runs Redis on host-a with a client writing to it over one TCP connection, migrates "
        + "the pod to host-b, checks every acknowledged write, prints what happened and takes the lab down.")
final class DemoCommand implements Callable<Integer> {
  /** Where to write the report. */
  @Option(names = "--json-report", description = "write the migration report (JSON) to this file")
  Path jsonReport;

  /** Lab name used by the demo (its own, so that it never touches a lab you use). */
  @Option(names = "--demo-lab", defaultValue = "demo", description = "name of the demo's own lab (default: ${DEFAULT-VALUE})")
  String labName;

  /** How much data Redis holds before the migration. */
  @Option(names = "--data-mib", defaultValue = "0", description = "MiB of data to load into Redis first (default: none)")
  long dataMiB;

  /** Faults to inject (tests, debugging). */
  @Option(names = "--inject-fault", hidden = true)
  List<String> faults = new java.util.ArrayList<>();

  /** Migration strategy. */
  @Option(names = "--strategy", defaultValue = "auto",
      description = "migration strategy: auto (default), cold, precopy, postcopy or hybrid (see ferry migrate --help)")
  String strategy;

  /** Freeze budget for auto. */
  @Option(names = "--max-freeze", defaultValue = "0", description = "freeze budget in ms for --strategy auto (default: none)")
  long maxFreezeMs;

  /** Lets auto choose post-copy. */
  @Option(names = "--allow-postcopy", description = "let --strategy auto choose hybrid (pre-copy, then post-copy) to keep the budget")
  boolean allowPostcopy;

  /** Budget policy. */
  @Option(names = "--on-budget-miss", defaultValue = "proceed",
      description = "when --max-freeze cannot be kept: proceed (default, and say so), throttle (cap the pod's CPU during"
          + " pre-copy) or abort")
  String onBudgetMiss;

  /** Client through a service VIP. */
  @Option(names = "--runtime", defaultValue = "runc", description = "runc (runc + CRIU, default) or runsc (gVisor; cold"
      + " only, the client's connection is not kept: it reconnects, and the report measures it)")
  String runtime;

  @Option(names = "--vip", description = "publish the pod behind a service VIP (nftables DNAT, kernel data path) and"
      + " send the client through it; probes who answers for the pod's IP during the migration")
  boolean vip;

  /** Mutual TLS between agents. */
  @Option(names = "--tls", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "agents move images and memory to each other over mutual TLS (the default, as ferry lab up);"
          + " --no-tls: in clear")
  boolean tls;

  /** Probe rate. */
  @Option(names = "--probe-hz", defaultValue = "-1", description = "ARP samples a second asking who answers for the"
      + " pod's IP (default: 100 with --vip, else none; 0: none)")
  int probeHz;

  /** Pre- and post-migration hooks. */
  @picocli.CommandLine.Mixin HookOptions hookOptions = new HookOptions();

  @Override
  public Integer call() throws Exception {
    FerryCommand.requireRoot();
    if (dataMiB < 0 || dataMiB > 16384) {
      throw new IllegalArgumentException("--data-mib " + dataMiB + " is out of range (0 .. 16384)");
    }
    if (!dev.ferry.migration.Coordinator.STRATEGIES.contains(strategy)) {
      throw new IllegalArgumentException("strategy '" + strategy + "' is not available; use one of "
          + dev.ferry.migration.Coordinator.STRATEGIES);
    }
    MigrationReport r = new DemoRunner(labName, System.out, faults).dataMiB(dataMiB).strategy(strategy).runtime(runtime)
        .budget(maxFreezeMs, allowPostcopy, onBudgetMiss).vip(vip).tls(tls).probeIpOwners(probeHz >= 0 ? probeHz : vip ? 100 : 0)
        .hooks(hookOptions.hooks()).run();
    DemoRunner.printSummary(r, System.out);
    if (jsonReport != null) {
      Json.writeFile(jsonReport.toAbsolutePath(), r);
      System.out.println("  report         " + jsonReport.toAbsolutePath());
    }
    return DemoRunner.success(r) ? 0 : 1;
  }
}
