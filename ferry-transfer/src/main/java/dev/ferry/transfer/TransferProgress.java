package dev.ferry.transfer;

import java.util.concurrent.atomic.AtomicLong;

/** Bytes moved so far by one transfer, readable while it runs. */
public final class TransferProgress {
  private final AtomicLong bytes = new AtomicLong();
  private final AtomicLong files = new AtomicLong();
  private final long startNanos = System.nanoTime();
  private volatile long endNanos;

  void addBytes(long n) {
    bytes.addAndGet(n);
  }

  void addFile() {
    files.incrementAndGet();
  }

  /** A resumed transfer counts from what the receiver verified before the break. */
  void rewind(long verifiedBytes, long verifiedFiles) {
    bytes.set(verifiedBytes);
    files.set(verifiedFiles);
  }

  void finish() {
    endNanos = System.nanoTime();
  }

  public long bytes() {
    return bytes.get();
  }

  public long files() {
    return files.get();
  }

  public boolean finished() {
    return endNanos != 0;
  }

  /** Average rate so far in bytes per second. */
  public double bytesPerSecond() {
    long end = endNanos != 0 ? endNanos : System.nanoTime();
    double s = Math.max(1e-6, (end - startNanos) / 1e9);
    return bytes.get() / s;
  }
}
