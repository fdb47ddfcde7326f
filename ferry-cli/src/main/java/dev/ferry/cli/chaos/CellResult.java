package dev.ferry.cli.chaos;

import java.util.List;

/**
 * What one cell did, as the table and the JSON show it.
 *
 * @param outcome how the migration ended once everything was healed and recovered: migrated,
 *     rolled-back, refused (stopped before anything was prepared), failed, or lost
 * @param injected whether the fault struck (a timed fault misses when the migration passed its
 *     phase too fast, or ended first)
 * @param injectedAt the phase the migration was in when the fault struck
 * @param recoverMs from the fault to the pod running in one copy with its migration ended
 * @param violations invariants that did not hold, in words; empty when all held
 */
public record CellResult(String fault, String phase, String strategy, String outcome, boolean injected,
    String injectedAt, long recoverMs, boolean invariantsHeld, List<String> violations, String migrationId,
    String error, long writesAcked) {}
