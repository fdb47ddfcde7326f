package dev.ferry.runtime;

/**
 * A restore started ahead of its moment ({@link ContainerRuntime#startRestore}): what comes
 * before the runtime's real work is done while the caller waits for something else (on a
 * migration's target, the identity hand-over), and the rest happens at {@link #go}.
 *
 * <p>Exactly one of {@link #go} and {@link #close} ends it; {@link #close} after {@link #go} does
 * nothing. A restore closed without {@link #go} never touched the images or the container: the
 * caller removes whatever else it readied, as after a failed restore.
 */
public interface PendingRestore extends AutoCloseable {
  /**
   * Lets the restore proceed and waits for its end.
   *
   * @throws CheckpointException as {@link ContainerRuntime#restore} does
   */
  void go();

  /** Abandons a restore not let go: its processes end and nothing of it is left. Idempotent. */
  @Override
  void close();

  /** A restore that does everything at {@link #go} (runtimes that cannot start one ahead). */
  static PendingRestore deferred(Runnable restore) {
    return new PendingRestore() {
      @Override
      public void go() {
        restore.run();
      }

      @Override
      public void close() {}
    };
  }
}
