package dev.ferry.cli.chaos;

import dev.ferry.api.MigrationPhase;

/**
 * One case of the fault matrix: a fault, where it strikes, and the strategy of the migration it
 * strikes.
 *
 * @param phase the phase at which a timed fault is injected; null for one set up before
 */
public record Cell(Fault fault, MigrationPhase phase, String strategy) {
  /** The phase as the table shows it. */
  public String phaseName() {
    return phase == null ? Fault.WHOLE_MIGRATION : phase.displayName();
  }

  /**
   * A cell as {@link #toString} writes it, spaces optional: {@code FAULT@PHASE/STRATEGY}, e.g.
   * {@code source-agent-kill@Postcopy/hybrid}; the phase of an untimed fault is
   * {@value Fault#WHOLE_MIGRATION}. Only cells of the full matrix are accepted.
   */
  public static Cell parse(String text) {
    String t = text.replace(" ", "");
    int at = t.indexOf('@');
    int slash = t.lastIndexOf('/');
    if (at <= 0 || slash < at + 2 || slash == t.length() - 1) {
      throw new IllegalArgumentException("cell '" + text + "' is not FAULT@PHASE/STRATEGY, e.g."
          + " source-agent-kill@Postcopy/hybrid");
    }
    Fault f = Fault.byId(t.substring(0, at));
    String phase = t.substring(at + 1, slash);
    String strategy = t.substring(slash + 1);
    return FaultMatrix.full(FaultMatrix.STRATEGIES).stream()
        .filter(c -> c.fault() == f && c.phaseName().equalsIgnoreCase(phase) && c.strategy().equals(strategy))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("the matrix has no cell " + f.id + " @ " + phase + " / " + strategy
            + " (strategies: " + FaultMatrix.STRATEGIES + "; see the phases each fault strikes in bench/results/chaos.md)"));
  }

  @Override
  public String toString() {
    return fault.id + " @ " + phaseName() + " / " + strategy;
  }
}
