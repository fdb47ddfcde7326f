package dev.ferry.migration;

import dev.ferry.api.MigrationReport;

/** A migration did not happen; the report says what was done about it. */
public class MigrationFailedException extends RuntimeException {
  private final transient MigrationReport report;

  public MigrationFailedException(String message, MigrationReport report) {
    super(message);
    this.report = report;
  }

  public MigrationReport report() {
    return report;
  }
}
