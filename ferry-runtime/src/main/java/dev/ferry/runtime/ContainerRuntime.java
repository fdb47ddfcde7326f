package dev.ferry.runtime;

import java.nio.file.Path;
import java.util.List;

/**
 * One interface over container engines (runc + CRIU now; runsc later). Every method is
 * idempotent where the name says so, so that a retried or replayed step is safe.
 */
public interface ContainerRuntime {
  /** Engine name for reports, e.g. "runc+criu". */
  String name();

  /** Creates and starts a detached container from an OCI bundle. */
  void run(String id, Path bundle);

  /** The container's state; status "missing" when the engine does not know it. */
  ContainerStatus state(String id);

  /** Kills (SIGKILL) and deletes the container. Idempotent. */
  void destroy(String id);

  /**
   * Checkpoints the running container into {@code imageDir} (established TCP connections
   * included, the network locked while frozen). The container is gone afterwards.
   */
  void checkpoint(String id, Path imageDir, Path workDir);

  /** Restores a checkpointed container from {@code imageDir} into the given bundle, detached. */
  void restore(String id, Path bundle, Path imageDir, Path workDir);

  /** Ids of containers this engine knows whose id starts with {@code prefix}. */
  List<String> list(String prefix);

  /** A container's status as the engine reports it. */
  record ContainerStatus(String id, String status, long pid) {
    public boolean running() {
      return "running".equals(status);
    }
  }
}
