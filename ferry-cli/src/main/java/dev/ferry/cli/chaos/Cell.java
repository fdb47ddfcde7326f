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

  @Override
  public String toString() {
    return fault.id + " @ " + phaseName() + " / " + strategy;
  }
}
