package dev.ferry.kubernetes.controller;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import java.util.Optional;

/**
 * What moves a pod for the controller: the same migration state machine `ferry migrate` drives
 * ({@link CoordinatorEngine}), or a stand-in in the controller's tests.
 */
public interface MigrationEngine {
  /** The outcome of a recovered migration that could not be finished yet (a host it needs is away). */
  String UNFINISHED = "unfinished";

  /**
   * One migration to run, with the policy's defaults already filled in; {@code placeholder} is
   * the Pod on the target node the agent there restores the pod into (null for an engine that
   * does not restore into Pods, see {@link #restoresIntoPods()}).
   */
  record Request(String namespace, String pod, String sourceNode, String targetNode, String strategy, long maxFreezeMs,
      long bandwidthMBps, boolean allowPostcopy, Placeholder placeholder) {}

  /** The placeholder Pod the controller created on the target node: the agent restores into this one, by name and uid. */
  record Placeholder(String name, String uid) {}

  /**
   * Whether the engine's agents restore into the placeholder Pods the controller creates through
   * the API (a node's agent under its kubelet). Then the controller creates the placeholder
   * before the engine starts, deletes it when the migration rolls back and hands the source's
   * place over to it when it succeeds. An engine whose agents run pods of their own (the lab's
   * coordinator: no kubelet) answers false, and the controller leaves Pod objects alone.
   */
  boolean restoresIntoPods();

  /** What a running migration reports, from the engine's threads. */
  interface Listener {
    /** The migration got its id (before anything is prepared or frozen). */
    void started(String migrationId);

    /** A phase began. */
    void phase(String migrationId, MigrationPhase phase, String what);

    /** Transfer progress: bytes so far, rate, pre-copy round (0 outside pre-copy), predicted freeze (0 if none). */
    void progress(String migrationId, long bytes, double bytesPerSecond, int round, double dirtyBytesPerSecond,
        long predictedFreezeMs);

    /** The migration ended (succeeded, rolled back or failed); the report says which and why. */
    void ended(String migrationId, MigrationReport report);
  }

  /** Starts a migration in the background and returns at once. */
  void start(Request request, Listener listener);

  /** Asks a migration to stop before its commit point (no effect after it). */
  void cancel(String migrationId);

  /** Whether this engine drives {@code migrationId} right now. */
  boolean drives(String migrationId);

  /**
   * A migration nobody drives any more (the controller restarted mid-way): finishes it if it
   * was committed, rolls it back if not, and returns its report once it ended (outcome
   * {@link #UNFINISHED} if it could not be yet: ask again later); empty if the engine has no
   * record of it.
   */
  Optional<MigrationReport> recover(String migrationId);
}
