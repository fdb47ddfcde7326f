package dev.ferry.api;

/** The phases of one migration, in the order a successful one passes through them. */
public enum MigrationPhase {
  /** Recorded, pre-checks running; nothing has been touched yet. */
  PENDING,
  /** Placeholder sandbox being created on the target. */
  PREPARING,
  /** Source still running: what can be copied ahead (the pod's files) goes to the target. */
  PRECOPY,
  /** Source app frozen and checkpointed; from here the client sees a pause. */
  DUMPING,
  /** Checkpoint images and the pod's files streaming to the target. */
  TRANSFERRING,
  /** Identity moved and the process tree restored on the target. */
  RESTORING,
  /** Target proven running, network unlocked, neighbours told: the commit point. */
  CUTOVER,
  /**
   * Post-copy only: the pod runs on the target while its memory arrives from the frozen
   * source; a failure of the source now loses the pod.
   */
  POSTCOPY,
  /** Source pod and temporary files removed. */
  CLEANUP,
  /** Done: the pod runs on the target only. */
  SUCCEEDED,
  /** Undoing what was done, source being resumed. */
  ROLLING_BACK,
  /** Undone: the pod runs on the source as before. */
  ROLLED_BACK,
  /** Could neither finish nor fully roll back; the record says what is left. */
  FAILED;

  /** True for phases after which nothing more happens. */
  public boolean isFinal() {
    return this == SUCCEEDED || this == ROLLED_BACK || this == FAILED;
  }

  /** Name used in reports and on screen, e.g. "Transferring". */
  public String displayName() {
    StringBuilder b = new StringBuilder();
    for (String part : name().split("_")) {
      b.append(part.charAt(0)).append(part.substring(1).toLowerCase());
    }
    return b.toString();
  }
}
