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

  /**
   * Thaws a container left frozen (paused): a cancelled lazy dump gives the tree back frozen,
   * since the checkpoint froze it first. Idempotent.
   */
  void thaw(String id);

  /** Restores a checkpointed container from {@code imageDir} into the given bundle, detached. */
  void restore(String id, Path bundle, Path imageDir, Path workDir);

  /**
   * Post-copy, source side: dumps all but the memory pages and keeps the frozen tree serving
   * them on {@code listenIp:port}. Returns once the images are written and the server listens.
   */
  PostCopy.LazyDump checkpointLazy(String id, Path imageDir, Path workDir, String listenIp, int port) throws Exception;

  /**
   * Target side of a lazy restore: the page client that will fill the restored memory, from
   * {@code pageServer} (post-copy), or from the local images when it is null.
   */
  PostCopy.PageClient startPageClient(Path imageDir, Path workDir, String pageServer) throws Exception;

  /** Post-copy, target side: restores without memory; pages come through the page client in {@code workDir}. */
  void restoreLazy(String id, Path bundle, Path imageDir, Path workDir);

  /** The container's processes (host pids): its init process where the runtime cannot tell more. */
  default java.util.Set<Long> processes(String id) {
    ContainerStatus st = state(id);
    return st.running() ? java.util.Set.of(st.pid()) : java.util.Set.of();
  }

  /**
   * The files the container's processes have mapped shared and writable ({@link SharedMappings}),
   * by file key: a copy that goes by size and times must copy them again. Empty where the
   * runtime cannot tell (the processes live inside a sandbox kernel).
   */
  default java.util.Set<Object> filesMappedForWriting(String id) {
    return java.util.Set.of();
  }

  /**
   * Starts {@link #restore} ({@code lazy}: {@link #restoreLazy}) ahead: the images and bundle
   * are complete, but the restore must not run before {@link PendingRestore#go} (on a migration's
   * target, the pod's link is not up yet, which CRIU needs to rebuild its TCP connections). This
   * default does everything at {@code go}.
   */
  default PendingRestore startRestore(String id, Path bundle, Path imageDir, Path workDir, boolean lazy) {
    return PendingRestore.deferred(() -> {
      if (lazy) {
        restoreLazy(id, bundle, imageDir, workDir);
      } else {
        restore(id, bundle, imageDir, workDir);
      }
    });
  }

  /**
   * Caps the container's CPU at {@code percent} of one CPU; 0 lifts the cap. Slows a pod that
   * dirties memory faster than pre-copy can ship it.
   */
  void limitCpu(String id, int percent);

  /** Ids of containers this engine knows whose id starts with {@code prefix}. */
  List<String> list(String prefix);

  /** A container's status as the engine reports it. */
  record ContainerStatus(String id, String status, long pid) {
    public boolean running() {
      return "running".equals(status);
    }
  }
}
