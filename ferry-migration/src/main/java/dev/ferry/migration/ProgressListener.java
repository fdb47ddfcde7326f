package dev.ferry.migration;

import dev.ferry.api.MigrationPhase;

/** Receives what a migration is doing, as it happens (the CLI prints it). */
public interface ProgressListener {
  /** A phase started. */
  void phase(String migrationId, MigrationPhase phase, String what);

  /** Bytes moved so far and the current rate, during a transfer. */
  void transfer(String migrationId, long bytes, double bytesPerSecond);

  ProgressListener NONE =
      new ProgressListener() {
        @Override
        public void phase(String migrationId, MigrationPhase phase, String what) {}

        @Override
        public void transfer(String migrationId, long bytes, double bytesPerSecond) {}
      };
}
