package dev.ferry.transfer;

/**
 * Holds a byte stream, or several sharing one link, to a rate: callers announce what they are
 * about to send and are made to wait so that, averaged since the start, the rate is not
 * exceeded. Allows a burst of one chunk, which keeps the average within a few percent for
 * transfers of many chunks. Thread-safe: one limiter may cap every transfer of a host.
 */
public final class RateLimiter {
  private final double bytesPerNano;
  private long start = System.nanoTime();
  private long sent;

  /** @param bytesPerSecond the cap; must be positive */
  public RateLimiter(long bytesPerSecond) {
    if (bytesPerSecond <= 0) {
      throw new IllegalArgumentException("bandwidth cap must be positive, got " + bytesPerSecond);
    }
    this.bytesPerNano = bytesPerSecond / 1e9;
  }

  /** Waits until {@code bytes} more may go. */
  public void acquire(long bytes) throws java.io.InterruptedIOException {
    long due;
    synchronized (this) {
      long now = System.nanoTime();
      if (start + (long) (sent / bytesPerNano) < now - 100_000_000L) {
        // behind by over 100 ms (idle between transfers, or slower than the cap): an average
        // since the start would allow a burst of all the time lost; count from now instead
        start = now;
        sent = 0;
      }
      due = start + (long) (sent / bytesPerNano);
      sent += bytes;
    }
    long wait = due - System.nanoTime();
    if (wait > 0) {
      try {
        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while holding the bandwidth cap");
      }
    }
  }
}
