package dev.ferry.cli;

import dev.ferry.lab.Lab;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.MigrationStore;

/**
 * A lab with its embedded coordinator, opened for one command. Opening it also recovers
 * migrations whose process died (finishes committed ones, rolls back the others).
 */
final class LabSession implements AutoCloseable {
  final Lab lab;
  final MigrationStore store;
  final Coordinator coordinator;

  private LabSession(Lab lab) {
    this.lab = lab;
    this.store = new MigrationStore(lab.config().stateDir());
    this.coordinator = LabHosts.coordinator(lab, store);
  }

  static LabSession open(String labName) {
    FerryCommand.requireRoot();
    LabSession s = new LabSession(Lab.require(labName));
    for (String line : s.coordinator.recover()) {
      System.err.println("ferry: recovered migration " + line);
    }
    return s;
  }

  @Override
  public void close() {
    store.close();
  }
}
