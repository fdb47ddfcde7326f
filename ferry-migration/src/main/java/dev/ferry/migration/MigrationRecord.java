package dev.ferry.migration;

import dev.ferry.api.MigrationPhase;

/**
 * One migration as recorded durably.
 *
 * @param id migration id
 * @param pod pod name
 * @param source source host
 * @param target target host
 * @param strategy "cold" for now
 * @param phase current phase
 * @param committed true once the commit point was passed: from then on only forward
 * @param ownerPid process driving it; a record whose owner died is recovered
 * @param createdAt epoch ms
 * @param updatedAt epoch ms
 * @param error what went wrong, or null
 * @param reportJson the final report, or null while it runs
 */
public record MigrationRecord(
    String id,
    String pod,
    String source,
    String target,
    String strategy,
    MigrationPhase phase,
    boolean committed,
    long ownerPid,
    long createdAt,
    long updatedAt,
    String error,
    String reportJson) {}
