package dev.ferry.cli.chaos;

import dev.ferry.api.MigrationPhase;
import java.util.ArrayList;
import java.util.List;

/** Which cells {@code ferry chaos} runs: the full matrix, or the quick slice the tests run. */
public final class FaultMatrix {
  public static final List<String> STRATEGIES = List.of("cold", "precopy", "postcopy", "hybrid");

  private FaultMatrix() {}

  /** Every fault at every phase it applies to, for every strategy that has that phase. */
  public static List<Cell> full(List<String> strategies) {
    List<Cell> cells = new ArrayList<>();
    for (String s : strategies) {
      for (Fault f : Fault.values()) {
        if (!f.timed()) {
          cells.add(new Cell(f, null, s));
          continue;
        }
        for (MigrationPhase p : f.phases) {
          if (has(s, p)) {
            cells.add(new Cell(f, p, s));
          }
        }
      }
    }
    return cells;
  }

  /**
   * A slice that runs in a few minutes: the baseline, each process killed in the frozen
   * window, a corrupt and a truncated image, a connection reset, a failing hook and a cancel
   * racing the commit; one pre-copy cell.
   */
  public static List<Cell> quick() {
    return List.of(
        new Cell(Fault.NONE, null, "cold"),
        new Cell(Fault.SOURCE_AGENT_KILL, MigrationPhase.TRANSFERRING, "cold"),
        new Cell(Fault.TARGET_AGENT_KILL, MigrationPhase.RESTORING, "cold"),
        new Cell(Fault.COORDINATOR_KILL, MigrationPhase.TRANSFERRING, "cold"),
        new Cell(Fault.COORDINATOR_KILL, MigrationPhase.PRECOPY, "precopy"),
        // a killed runc left its CRIU to freeze the tree again after the rollback thawed it
        new Cell(Fault.SOURCE_CRIU_KILL, MigrationPhase.DUMPING, "cold"),
        new Cell(Fault.CORRUPT_IN_TRANSIT, null, "cold"),
        new Cell(Fault.TRUNCATED_IMAGE, null, "cold"),
        new Cell(Fault.CONNECTION_RESET, null, "cold"),
        new Cell(Fault.PRE_HOOK_FAILS, null, "cold"),
        new Cell(Fault.CANCEL_AT_COMMIT, MigrationPhase.CUTOVER, "cold"));
  }

  /** Pre-copy rounds only with pre-copy strategies; every strategy reaches the rest. */
  static boolean has(String strategy, MigrationPhase p) {
    return p != MigrationPhase.PRECOPY || strategy.equals("precopy") || strategy.equals("hybrid");
  }
}
