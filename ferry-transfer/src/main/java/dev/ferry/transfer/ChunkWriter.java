package dev.ferry.transfer;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Writes a receiver's verified chunks to their files on a thread of its own, so that reading the
 * next chunk from the connection (one core) overlaps writing this one to the file (another):
 * on tmpfs the write costs about as much as the read. Chunks are written in the order they were
 * {@linkplain #write submitted}, each followed by its bookkeeping (what a resume goes on from).
 * A writer holds a few chunk buffers; {@link #buffer()} lends the next free one.
 */
final class ChunkWriter implements AutoCloseable {
  private static final int BUFFERS = 3;
  private final BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(BUFFERS);
  private final BlockingQueue<Job> jobs = new ArrayBlockingQueue<>(BUFFERS + 1);
  private final Thread thread;
  private int pending; // submitted and not yet done; changed under this
  private IOException failure;

  /** What to do for one chunk: write it (unless it is a hole), then note it done. */
  private record Job(FileChannel file, ByteBuffer chunk, long offset, Runnable done) {}

  private static final Job STOP = new Job(null, null, 0, null);

  /** @param direct whether chunk buffers are direct (the connection reads into them without a copy) */
  ChunkWriter(boolean direct) {
    for (int i = 0; i < BUFFERS; i++) {
      free.add(direct ? ByteBuffer.allocateDirect(TransferProtocol.CHUNK) : ByteBuffer.allocate(TransferProtocol.CHUNK));
    }
    thread = new Thread(this::run, "ferry-chunk-writer");
    thread.setDaemon(true);
    thread.start();
  }

  /** A free chunk buffer, cleared; waits while all are being written. */
  ByteBuffer buffer() throws IOException {
    try {
      ByteBuffer b = free.take();
      throwIfFailed();
      return b.clear();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for a chunk buffer");
    }
  }

  /** Gives back a buffer from {@link #buffer()} that was not submitted. */
  void giveBack(ByteBuffer chunk) {
    free.add(chunk);
  }

  /**
   * Writes {@code chunk}'s remaining bytes (a buffer from {@link #buffer()}, or null for a hole:
   * nothing is written) to {@code file} at {@code offset}, then runs {@code done}.
   */
  void write(FileChannel file, ByteBuffer chunk, long offset, Runnable done) throws IOException {
    throwIfFailed();
    synchronized (this) {
      pending++;
    }
    put(new Job(file, chunk, offset, done));
  }

  /** Waits until every submitted chunk is written and noted done; throws what a write threw. */
  void drain() throws IOException {
    if (!settle()) {
      throw new InterruptedIOException("interrupted while writing chunks");
    }
    throwIfFailed();
  }

  /**
   * Waits until no submitted chunk is left (written, or skipped after a failure), without
   * throwing: before a file closes on the way out of an error. False when interrupted.
   */
  boolean settle() {
    synchronized (this) {
      while (pending > 0) {
        try {
          wait();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
    }
    return true;
  }

  private synchronized void throwIfFailed() throws IOException {
    if (failure != null) {
      throw new IOException(failure.getMessage(), failure);
    }
  }

  private void put(Job job) throws InterruptedIOException {
    try {
      jobs.put(job);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while writing chunks");
    }
  }

  private void run() {
    while (true) {
      Job job;
      try {
        job = jobs.take();
      } catch (InterruptedException e) {
        return;
      }
      if (job == STOP) {
        return;
      }
      try {
        boolean ok;
        synchronized (this) {
          ok = failure == null; // after a failure, nothing more is written or noted
        }
        if (ok) {
          if (job.chunk() != null) {
            ByteBuffer b = job.chunk();
            int start = b.position();
            while (b.hasRemaining()) {
              job.file().write(b, job.offset() + b.position() - start);
            }
          }
          job.done().run();
        }
      } catch (IOException | RuntimeException e) {
        synchronized (this) {
          failure = e instanceof IOException io ? io : new IOException("writing a received chunk: " + e.getMessage(), e);
        }
      } finally {
        if (job.chunk() != null) {
          free.add(job.chunk());
        }
        synchronized (this) {
          pending--;
          notifyAll();
        }
      }
    }
  }

  /**
   * Waits for what was submitted (a failure among it was or will be reported by {@link #drain}),
   * then stops the thread. Closing again does nothing.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    settle();
    try {
      jobs.put(STOP);
      thread.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private boolean closed;
}
