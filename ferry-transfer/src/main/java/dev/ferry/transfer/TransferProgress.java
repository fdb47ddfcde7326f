package dev.ferry.transfer;

import java.util.concurrent.atomic.AtomicLong;

/** Bytes moved so far by one transfer, readable while it runs. */
public final class TransferProgress {
  private final AtomicLong bytes = new AtomicLong();
  private final AtomicLong files = new AtomicLong();
  private final long startNanos = System.nanoTime();
  private volatile long endNanos;
  /** The whole transfer's progress when this is one lane's (see {@link ParallelSender}), else null. */
  private final TransferProgress whole;

  public TransferProgress() {
    this(null);
  }

  /** One lane's progress, whose bytes (and files begun on it) also count in {@code whole}. */
  TransferProgress(TransferProgress whole) {
    this.whole = whole;
  }

  void addBytes(long n) {
    bytes.addAndGet(n);
    if (whole != null) {
      whole.addBytes(n);
    }
  }

  void addFile() {
    addFile(true);
  }

  /** @param counts whether the whole transfer counts it too (a split file counts once, on the lane of its start) */
  void addFile(boolean counts) {
    files.incrementAndGet();
    if (whole != null && counts) {
      whole.addFile();
    }
  }

  /** A resumed transfer counts from what the receiver verified before the break. */
  void rewind(long verifiedBytes, long verifiedFiles) {
    long b = bytes.getAndSet(verifiedBytes);
    files.set(verifiedFiles);
    if (whole != null) {
      whole.addBytes(verifiedBytes - b); // a lane's files are not tracked apart: the whole's count may run ahead after a resume
    }
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
