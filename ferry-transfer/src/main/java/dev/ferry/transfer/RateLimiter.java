package dev.ferry.transfer;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Holds a byte stream, or several sharing one link, to a rate: callers announce what they are
 * about to send and are made to wait so that, averaged since the start, the rate is not
 * exceeded. Allows a burst of one chunk, which keeps the average within a few percent for
 * transfers of many chunks. Thread-safe: one limiter may cap every transfer of a host.
 *
 * <p>A limiter {@linkplain #shared shared} through a file caps the processes of one host
 * together: the agent's transfers and page pump, and the page daemon's relays of CRIU's page
 * server, each with its own limiter on the same file, count against one cap.
 */
public final class RateLimiter {
  /** Behind by more than this (idle, or slower than the cap), the average restarts from now. */
  private static final long IDLE_NANOS = 100_000_000L;

  private final double bytesPerNano;
  private final Ledger ledger;

  /** @param bytesPerSecond the cap; must be positive */
  public RateLimiter(long bytesPerSecond) {
    this(bytesPerSecond, new MemoryLedger());
  }

  private RateLimiter(long bytesPerSecond, Ledger ledger) {
    if (bytesPerSecond <= 0) {
      throw new IllegalArgumentException("bandwidth cap must be positive, got " + bytesPerSecond);
    }
    this.bytesPerNano = bytesPerSecond / 1e9;
    this.ledger = ledger;
  }

  /**
   * Writes a host's cap to {@code file} (created with mode 0600 if need be) and returns a
   * limiter on it; a cap of 0 or less removes the file and returns null (no cap). What was
   * counted on the file before (by another process of the host) goes on counting.
   */
  public static RateLimiter publish(Path file, long bytesPerSecond) {
    try {
      if (bytesPerSecond <= 0) {
        Files.deleteIfExists(file);
        return null;
      }
      FileLedger ledger = FileLedger.of(file);
      ledger.setCap(bytesPerSecond);
      return new RateLimiter(bytesPerSecond, ledger);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the host's bandwidth cap to " + file, e);
    }
  }

  /**
   * A limiter on the cap another process {@linkplain #publish published} in {@code file}, or
   * null when there is none (no file, or a cap of 0).
   */
  public static RateLimiter shared(Path file) {
    if (!Files.exists(file)) {
      return null;
    }
    try {
      FileLedger ledger = FileLedger.of(file);
      long cap = ledger.cap();
      return cap > 0 ? new RateLimiter(cap, ledger) : null;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the host's bandwidth cap from " + file, e);
    }
  }

  /** The cap, bytes per second. */
  public long bytesPerSecond() {
    return Math.round(bytesPerNano * 1e9);
  }

  /** Waits until {@code bytes} more may go. */
  public void acquire(long bytes) throws InterruptedIOException {
    long due = ledger.reserve(bytes, bytesPerNano);
    long wait = due - System.nanoTime();
    if (wait > 0) {
      try {
        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while holding the bandwidth cap");
      }
    }
  }

  /**
   * The rule, on a ledger's {@code state} (start of the average in nanoseconds, bytes counted
   * since): counts {@code bytes} and returns when they may go.
   */
  static long schedule(long[] state, long bytes, double bytesPerNano, long now) {
    if (state[0] + (long) (state[1] / bytesPerNano) < now - IDLE_NANOS) {
      // behind by over 100 ms (idle between transfers, or slower than the cap): an average
      // since the start would allow a burst of all the time lost; count from now instead
      state[0] = now;
      state[1] = 0;
    }
    long due = state[0] + (long) (state[1] / bytesPerNano);
    state[1] += bytes;
    return due;
  }

  /** Where a limiter keeps its average: in memory, or in a file processes share. */
  private interface Ledger {
    long reserve(long bytes, double bytesPerNano);
  }

  private static final class MemoryLedger implements Ledger {
    private final long[] state = {System.nanoTime(), 0};

    @Override
    public synchronized long reserve(long bytes, double bytesPerNano) {
      return schedule(state, bytes, bytesPerNano, System.nanoTime());
    }
  }

  /**
   * The ledger in a 24-byte file (cap, start, bytes), mapped, updated under a file lock (other
   * processes) and this object's monitor (threads and limiters of this process, which share
   * one ledger per file: a JVM holds file locks for all of itself). {@code System.nanoTime} is
   * CLOCK_MONOTONIC on Linux, one clock for every process of the host.
   */
  private static final class FileLedger implements Ledger {
    private static final Map<Path, FileLedger> OPEN = new ConcurrentHashMap<>();
    private final FileChannel channel;
    private final MappedByteBuffer map;

    private FileLedger(FileChannel channel, MappedByteBuffer map) {
      this.channel = channel;
      this.map = map;
    }

    static FileLedger of(Path file) throws IOException {
      Path real = file.toAbsolutePath().normalize();
      synchronized (OPEN) {
        FileLedger open = OPEN.get(real);
        if (open != null && open.channel.isOpen() && Files.exists(real)) {
          return open;
        }
        FileChannel ch = FileChannel.open(real, StandardOpenOption.CREATE, StandardOpenOption.READ,
            StandardOpenOption.WRITE);
        try {
          Files.setPosixFilePermissions(real, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
          try (FileLock l = ch.lock()) {
            if (ch.size() < 24) {
              ch.write(ByteBuffer.allocate(24).putLong(0).putLong(System.nanoTime()).putLong(0).flip(), 0);
            }
          }
          FileLedger ledger = new FileLedger(ch, ch.map(FileChannel.MapMode.READ_WRITE, 0, 24));
          if (open != null) {
            open.channel.close(); // its file was replaced
          }
          OPEN.put(real, ledger);
          return ledger;
        } catch (IOException | RuntimeException e) {
          ch.close();
          throw e;
        }
      }
    }

    synchronized long cap() {
      return map.getLong(0);
    }

    synchronized void setCap(long bytesPerSecond) throws IOException {
      try (FileLock l = channel.lock()) {
        map.putLong(0, bytesPerSecond);
      }
    }

    @Override
    public synchronized long reserve(long bytes, double bytesPerNano) {
      try (FileLock l = channel.lock()) {
        long[] state = {map.getLong(8), map.getLong(16)};
        long due = schedule(state, bytes, bytesPerNano, System.nanoTime());
        map.putLong(8, state[0]).putLong(16, state[1]);
        return due;
      } catch (IOException e) {
        // the ledger cannot be locked: hold this process to the cap on its own rather than fail a transfer
        return System.nanoTime() + (long) (bytes / bytesPerNano);
      }
    }
  }
}
