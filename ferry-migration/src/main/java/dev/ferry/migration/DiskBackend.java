package dev.ferry.migration;

import java.util.List;

/**
 * Where network disks live and how they are attached to hosts (the lab: a directory per disk,
 * bind-mounted into a host's agent directory). The coordinator's {@link Disks} decides; the
 * backend only acts and observes.
 */
public interface DiskBackend {
  /** Creates an empty disk. Idempotent. */
  void create(String disk);

  /** Attaches the disk to {@code host}. Idempotent. */
  void attach(String disk, String host);

  /** Detaches the disk from {@code host}. Idempotent. */
  void detach(String disk, String host);

  /** Deletes a detached disk and its data. */
  void delete(String disk);

  /** The hosts the disk is attached to now, as observed (not as recorded). */
  List<String> attachedTo(String disk);

  /** No disks: every call fails with a clear message. */
  DiskBackend NONE = new DiskBackend() {
    private IllegalStateException none() {
      return new IllegalStateException("this coordinator has no disk backend: network disks are not available");
    }

    @Override
    public void create(String disk) {
      throw none();
    }

    @Override
    public void attach(String disk, String host) {
      throw none();
    }

    @Override
    public void detach(String disk, String host) {
      throw none();
    }

    @Override
    public void delete(String disk) {
      throw none();
    }

    @Override
    public List<String> attachedTo(String disk) {
      return List.of();
    }
  };
}
