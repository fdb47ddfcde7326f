package dev.ferry.migration;

import dev.ferry.api.MigrationPhase;

/** Receives what a migration is doing, as it happens (the CLI prints it). */
public interface ProgressListener {
  /** A phase started. */
  void phase(String migrationId, MigrationPhase phase, String what);

  /** Bytes moved so far and the current rate, during a transfer. */
  void transfer(String migrationId, long bytes, double bytesPerSecond);

  /**
   * A memory pre-copy round ended.
   *
   * @param round 1, 2, ...
   * @param bytes sent in this round
   * @param bytesPerSecond rate of this round
   * @param dirtyBytesPerSecond how fast the pod changes its memory (0 after round 1)
   * @param predictedFrozenMs frozen window predicted if the pod were frozen now
   */
  record Round(int round, long bytes, double bytesPerSecond, double dirtyBytesPerSecond, long predictedFrozenMs) {}

  /** A memory pre-copy round ended. */
  default void round(String migrationId, Round round) {}

  ProgressListener NONE =
      new ProgressListener() {
        @Override
        public void phase(String migrationId, MigrationPhase phase, String what) {}

        @Override
        public void transfer(String migrationId, long bytes, double bytesPerSecond) {}
      };
}
