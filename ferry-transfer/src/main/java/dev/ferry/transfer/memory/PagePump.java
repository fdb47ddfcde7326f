package dev.ferry.transfer.memory;

import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

/**
 * Source side of moving a frozen pod's memory after a lazy dump: reads every lazy page from the
 * frozen processes and streams it to the target's {@link TargetPageStore}, except pages whose
 * contents the target already holds from a pre-copy round (those are only named: "kept").
 * Pages a restored process on the target waits for are asked for and sent ahead of the rest.
 */
public final class PagePump {
  /** Reads a frozen process's memory. */
  @FunctionalInterface
  public interface Memory {
    /** Fills {@code buf} from {@code vaddr} of process {@code pid} (pid inside the container); false if unmapped. */
    boolean read(long pid, long vaddr, ByteBuffer buf) throws IOException;
  }

  /** What a pump did. */
  public record Stats(long pages, long keptPages, long literalPages, long wantedPages, long bytes, long ms) {}

  private final List<CriuPagemap.LazyRange> ranges;
  private final SourcePages held;
  private final Memory memory;
  private final LinkedBlockingQueue<long[]> wants = new LinkedBlockingQueue<>();
  private final Map<Long, Set<Long>> sentAhead = new HashMap<>();
  private volatile boolean stopped;
  private static final long FLUSH_NANOS = 5_000_000;
  private long lastFlush = System.nanoTime();
  /** While held, only pages asked for are sent (e.g. during the restore, which needs the CPUs). */
  private volatile boolean holding;
  private volatile Socket socket;
  private long pages;
  private long kept;
  private long literal;
  private long wanted;
  private long bytes;

  /**
   * @param ranges the lazy dump's pages (see {@link CriuPagemap#lazyRanges})
   * @param held what pre-copy rounds delivered, or null when there were none
   */
  public PagePump(List<CriuPagemap.LazyRange> ranges, SourcePages held, Memory memory) {
    this(ranges, held, memory, 0);
  }

  /** @param bandwidthBytesPerSecond cap on the pages sent (the migration's --bandwidth), 0 for none */
  public PagePump(List<CriuPagemap.LazyRange> ranges, SourcePages held, Memory memory, long bandwidthBytesPerSecond) {
    this.ranges = List.copyOf(ranges);
    this.held = held;
    this.memory = memory;
    this.limiter = bandwidthBytesPerSecond > 0 ? new dev.ferry.transfer.RateLimiter(bandwidthBytesPerSecond) : null;
  }

  private final dev.ferry.transfer.RateLimiter limiter;

  /** Sends only pages the target asks for until {@link #release()}. */
  public void hold() {
    holding = true;
  }

  /** Lets the sequential pass run. */
  public void release() {
    holding = false;
  }

  /** Stops a pump under way (cancel, rollback): cuts its connection. */
  public void stop() {
    stopped = true;
    Socket s = socket;
    if (s != null) {
      try {
        s.close();
      } catch (IOException e) {
        // closed already
      }
    }
  }

  /**
   * Streams every page over {@code s} and waits for the target's acknowledgement.
   *
   * @throws IOException when the connection breaks, the target refuses, or a page is unreadable
   */
  public Stats run(Socket s) throws IOException {
    try {
      return pumpAll(s);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  private Stats pumpAll(Socket s) throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    socket = s;
    if (stopped) {
      throw new IOException("page pump stopped");
    }
    DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 20));
    DataInputStream in = new DataInputStream(s.getInputStream());
    CompletableFuture<Long> ack = new CompletableFuture<>();
    Thread reader = new Thread(() -> readTarget(in, ack), "ferry-pump-reader");
    reader.setDaemon(true);
    reader.start();
    ByteBuffer buf = ByteBuffer.allocateDirect(PumpProtocol.MAX_RUN * PumpProtocol.PAGE);
    byte[] copy = new byte[PumpProtocol.MAX_RUN * PumpProtocol.PAGE];
    while (holding && !stopped) {
      long[] w = wants.poll(5, TimeUnit.MILLISECONDS);
      if (w != null) {
        wants.add(w);
        serveWants(out, buf, copy);
      }
    }
    for (CriuPagemap.LazyRange r : ranges) {
      for (int done = 0; done < r.nrPages(); ) {
        serveWants(out, buf, copy);
        int n = Math.min(PumpProtocol.MAX_RUN, r.nrPages() - done);
        send(out, r.pid(), r.vaddr() + (long) done * PumpProtocol.PAGE, n, buf, copy, false);
        done += n;
        if (System.nanoTime() - lastFlush > FLUSH_NANOS) {
          // "kept" records are tiny: without this they would sit in the buffer while a restored
          // pod waits for the pages they confirm
          out.flush();
          lastFlush = System.nanoTime();
        }
      }
    }
    out.writeByte(PumpProtocol.END);
    out.writeLong(pages);
    out.flush();
    // wants may still come while the last records are on their way; they are served already
    try {
      long confirmed = ack.get(60, TimeUnit.SECONDS);
      if (confirmed != pages) {
        throw new IOException("target stored " + confirmed + " pages of " + pages);
      }
    } catch (java.util.concurrent.ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
    } catch (java.util.concurrent.TimeoutException e) {
      throw new IOException("target did not confirm the pages within 60 s");
    }
    return new Stats(pages, kept, literal, wanted, bytes, (System.nanoTime() - t0) / 1_000_000);
  }

  private void readTarget(DataInputStream in, CompletableFuture<Long> ack) {
    try {
      while (true) {
        byte kind = in.readByte();
        if (kind == PumpProtocol.WANT) {
          wants.add(new long[] {in.readLong(), in.readLong(), in.readInt()});
        } else if (kind == PumpProtocol.ACK) {
          ack.complete(in.readLong());
          return;
        } else {
          throw new IOException("target refused the pages: " + in.readUTF());
        }
      }
    } catch (IOException e) {
      ack.completeExceptionally(e);
    }
  }

  /**
   * Sends the pages the target waits for first: what was asked (a whole request of CRIU's
   * daemon, up to 4 MiB, so that its background fill does not hold up the faults queued behind
   * it), and at least 16 pages from a faulting address (neighbours are likely next).
   */
  private void serveWants(DataOutputStream out, ByteBuffer buf, byte[] copy) throws IOException {
    for (long[] w = wants.poll(); w != null; w = wants.poll()) {
      CriuPagemap.LazyRange r = rangeOf(w[0], w[1]);
      if (r == null) {
        continue; // not a lazy page: the target will say so
      }
      long end = r.vaddr() + (long) r.nrPages() * PumpProtocol.PAGE;
      long n = Math.min(Math.max(w[2], 16), 1024);
      n = Math.min(n, (end - w[1]) / PumpProtocol.PAGE);
      for (long done = 0; done < n; ) {
        int k = (int) Math.min(PumpProtocol.MAX_RUN, n - done);
        send(out, w[0], w[1] + done * PumpProtocol.PAGE, k, buf, copy, true);
        done += k;
      }
      out.flush();
    }
  }

  private CriuPagemap.LazyRange rangeOf(long pid, long vaddr) {
    for (CriuPagemap.LazyRange r : ranges) {
      if (r.pid() == pid && vaddr >= r.vaddr() && vaddr < r.vaddr() + (long) r.nrPages() * PumpProtocol.PAGE) {
        return r;
      }
    }
    return null;
  }

  /** Reads n pages and sends them as kept/literal records; skips pages already sent. */
  private void send(DataOutputStream out, long pid, long vaddr, int n, ByteBuffer buf, byte[] copy, boolean ahead)
      throws IOException {
    if (stopped) {
      throw new IOException("page pump stopped");
    }
    buf.clear().limit(n * PumpProtocol.PAGE);
    if (!memory.read(pid, vaddr, buf)) {
      throw new IOException("page 0x" + Long.toHexString(vaddr) + " of frozen pid " + pid + " is unreadable");
    }
    Set<Long> already = sentAhead.computeIfAbsent(pid, p -> new HashSet<>());
    int runStart = -1;
    byte runKind = 0;
    for (int i = 0; i <= n; i++) {
      byte kind = 0;
      if (i < n) {
        long a = vaddr + (long) i * PumpProtocol.PAGE;
        boolean skip = ahead ? !already.add(a) : already.contains(a);
        if (!skip) {
          kind = held != null && held.targetHolds(pid, a, PageHash.of(buf, i * PumpProtocol.PAGE))
              ? PumpProtocol.KEPT : PumpProtocol.LITERAL;
        }
      }
      if (runStart >= 0 && kind != runKind) {
        record(out, runKind, pid, vaddr + (long) runStart * PumpProtocol.PAGE, runStart, i - runStart, buf, copy);
        runStart = -1;
      }
      if (kind != 0 && runStart < 0) {
        runStart = i;
        runKind = kind;
      }
    }
    if (ahead) {
      wanted += n;
    }
  }

  private void record(DataOutputStream out, byte kind, long pid, long vaddr, int first, int count, ByteBuffer buf,
      byte[] copy) throws IOException {
    CRC32C crc = new CRC32C();
    crc.update(ByteBuffer.allocate(20).putLong(pid).putLong(vaddr).putInt(count).flip());
    out.writeByte(kind);
    out.writeLong(pid);
    out.writeLong(vaddr);
    out.writeInt(count);
    if (kind == PumpProtocol.LITERAL) {
      int len = count * PumpProtocol.PAGE;
      buf.get(first * PumpProtocol.PAGE, copy, 0, len);
      crc.update(copy, 0, len);
      if (limiter != null) {
        limiter.acquire(len);
      }
      out.write(copy, 0, len);
      literal += count;
      bytes += len;
    } else {
      kept += count;
    }
    out.writeInt((int) crc.getValue());
    bytes += 25;
    pages += count;
  }
}
