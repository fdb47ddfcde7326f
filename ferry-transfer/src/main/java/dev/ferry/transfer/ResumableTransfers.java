package dev.ferry.transfer;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * What a receiver has verified of each transfer, kept in memory across connections so that a
 * sender whose connection broke can go on from the last verified chunk. Shared by all the
 * receivers of one agent; a restarted agent has none, and its senders start over.
 */
public final class ResumableTransfers {
  /** How long a transfer nobody resumes is remembered. */
  private static final long FORGET_AFTER_NANOS = TimeUnit.MINUTES.toNanos(10);
  private final Map<String, Partial> byId = new ConcurrentHashMap<>();
  /** How a refused resume begins when the receiver never heard of the transfer: the sender starts over. */
  static final String NOTHING_TO_RESUME = "nothing to resume";

  /** One transfer's verified state. Guarded by {@link #busy}: one connection at a time. */
  static final class Partial {
    final String id;
    final Path root;
    final TransferProgress progress = new TransferProgress();
    final ReentrantLock busy = new ReentrantLock();
    volatile Closeable connection;
    volatile long touchedNanos = System.nanoTime();
    /** Entries fully written. */
    int entries;
    /** The file being written when the connection broke, or null. */
    String fileRel;
    long fileOffset;
    /** CRC32C of what was verified of {@link #fileRel}. */
    int fileCrc;
    boolean ended;

    Partial(String id, Path root) {
      this.id = id;
      this.root = root;
    }
  }

  /** Registers a transfer that starts afresh; an earlier one with the same id is forgotten. */
  Partial start(String id, Path root, Closeable connection) {
    long now = System.nanoTime();
    byId.values().removeIf(p -> now - p.touchedNanos > FORGET_AFTER_NANOS && !p.busy.isLocked());
    Partial p = new Partial(id, root);
    p.connection = connection;
    p.busy.lock();
    Partial old = byId.put(id, p);
    if (old != null) {
      closeQuietly(old.connection);
    }
    return p;
  }

  /**
   * Takes over transfer {@code id} for a new connection: the old connection, which may still be
   * blocked on a cut link, is closed, and its receiver given a few seconds to let go.
   *
   * @throws IntegrityException when there is nothing to resume
   */
  Partial resume(String id, Closeable connection) throws IOException {
    Partial p = byId.get(id);
    if (p == null) {
      throw new IntegrityException(NOTHING_TO_RESUME + " for transfer " + id
          + ": the target never verified any of it, refused it, or restarted since");
    }
    closeQuietly(p.connection);
    try {
      if (!p.busy.tryLock(10, TimeUnit.SECONDS)) {
        throw new IOException("transfer " + id + " is still held by its earlier connection");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted while resuming transfer " + id);
    }
    if (byId.get(id) != p) {
      p.busy.unlock();
      throw new IntegrityException("transfer " + id + " was refused or restarted meanwhile");
    }
    p.connection = connection;
    return p;
  }

  /** The connection of {@code p} broke: keep what it verified for a resume. */
  void release(Partial p) {
    p.touchedNanos = System.nanoTime();
    p.connection = null;
    p.busy.unlock();
  }

  /** {@code p} was refused or failed beyond repair: a resume must start over. */
  void drop(Partial p) {
    byId.remove(p.id, p);
    p.busy.unlock();
  }

  /** Forgets every transfer whose id starts with {@code prefix} (a migration that ended). */
  public void forget(String prefix) {
    byId.keySet().removeIf(id -> id.startsWith(prefix));
  }

  private static void closeQuietly(Closeable c) {
    if (c != null) {
      try {
        c.close();
      } catch (IOException e) {
        // closing a connection that is broken already
      }
    }
  }
}
