package dev.ferry.transfer.memory;

import com.carrotsearch.hppc.LongHashSet;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

/**
 * Source side of moving a frozen pod's memory after a lazy dump: reads every lazy page from the
 * frozen processes and streams it to the target's {@link TargetPageStore}, except pages whose
 * contents the target already holds from a pre-copy round (those are only named: "kept").
 *
 * <p>Two connections ("lanes"): the bulk lane carries the sequential pass; the priority lane
 * carries the target's wants (pages a restored process or CRIU's daemon waits for) and their
 * pages, served by a thread of their own. A want never queues behind megabytes of the
 * sequential pass in one TCP stream, nor behind a pass blocked on a full socket.
 */
public final class PagePump {
  /** Reads a frozen process's memory. */
  @FunctionalInterface
  public interface Memory {
    /** Fills {@code buf} from {@code vaddr} of process {@code pid} (pid inside the container); false if unmapped. */
    boolean read(long pid, long vaddr, ByteBuffer buf) throws IOException;
  }

  /**
   * What a pump did. {@code recentPages}: pages sent first, unasked, as the last round's changed
   * set; -1 when that set was over {@link #RECENT_LIMIT_PAGES} and none were.
   */
  public record Stats(long pages, long keptPages, long literalPages, long wantedPages, long recentPages, long bytes,
      long ms) {}

  /** Pages {@link #sendRecentlyWritten} sent (-1: the set was too large to say anything). */
  private volatile long recentSent;

  private static final long FLUSH_NANOS = 5_000_000;
  private static final long[] NO_MORE = new long[0];

  private final List<CriuPagemap.LazyRange> ranges;
  private final SourcePages held;
  private final Memory memory;
  private final dev.ferry.transfer.RateLimiter limiter;
  private final dev.ferry.transfer.RateLimiter hostCap;
  private final LinkedBlockingQueue<long[]> wants = new LinkedBlockingQueue<>();
  /** Pages the priority lane sent, so that the sequential pass skips them. */
  private final Map<Long, LongHashSet> sentAhead = new HashMap<>();
  private volatile boolean stopped;
  /**
   * While held, only pages asked for and the last round's changed pages are sent (hybrid: until
   * the restored pod's network opens; the restore and the commit need the CPUs).
   */
  private volatile boolean holding;
  /** When the target last asked for a few pages: a restored process's fault (CRIU's background fill asks for more). */
  private volatile long lastFaultNanos;
  /** A want of at most this many pages is taken for a fault. */
  private static final int FAULT_PAGES = 16;
  /** After a release, the bulk pass waits until no fault came for this long... */
  static final long FAULTS_QUIET_NANOS = 30_000_000;
  /** ...but no longer than this. */
  static final long RELEASE_WAIT_MAX_NANOS = 250_000_000;
  private volatile Socket[] sockets = new Socket[0];

  public PagePump(List<CriuPagemap.LazyRange> ranges, SourcePages held, Memory memory) {
    this(ranges, held, memory, 0, null);
  }

  /**
   * @param bandwidthBytesPerSecond cap on the pages sent (the migration's --bandwidth), 0 for none
   * @param hostCap the host's cap on everything it sends, null for none
   */
  public PagePump(List<CriuPagemap.LazyRange> ranges, SourcePages held, Memory memory, long bandwidthBytesPerSecond,
      dev.ferry.transfer.RateLimiter hostCap) {
    this.ranges = List.copyOf(ranges);
    this.held = held;
    this.memory = memory;
    this.limiter = bandwidthBytesPerSecond > 0 ? new dev.ferry.transfer.RateLimiter(bandwidthBytesPerSecond) : null;
    this.hostCap = hostCap;
  }

  /** Sends only pages the target asks for until {@link #release()}. */
  public void hold() {
    holding = true;
  }

  /** Lets the sequential pass run. */
  public void release() {
    holding = false;
  }

  /** Whether {@link #stop} was called (a pump stopped on purpose is not started again). */
  public boolean stopped() {
    return stopped;
  }

  /**
   * The connections about to be opened for {@link #run}: a {@link #stop} from then on closes
   * them, which also ends a connect still waiting on a cut link (up to its timeout otherwise,
   * with the pod frozen meanwhile if a rollback is waiting for the pump).
   */
  public void connecting(Socket... lanes) {
    sockets = lanes.clone();
    if (stopped) {
      closeAll(); // stopped before it connected
    }
  }

  /** Stops a pump under way (cancel, rollback): cuts its connections. */
  public void stop() {
    stopped = true;
    closeAll();
  }

  private void closeAll() {
    for (Socket s : sockets) {
      dev.ferry.transfer.PeerTls.abort(s); // a TLS socket's close would first wait to send a close_notify
    }
  }

  /** One connection's stream and what went through it. */
  private final class Lane {
    final DataOutputStream out;
    final ByteBuffer buf = ByteBuffer.allocateDirect(PumpProtocol.MAX_RUN * PumpProtocol.PAGE);
    final byte[] copy = new byte[PumpProtocol.MAX_RUN * PumpProtocol.PAGE];
    final boolean ahead;
    long pages;
    long kept;
    long literal;
    long bytes;
    long lastFlush = System.nanoTime();

    Lane(Socket s, byte name, boolean ahead) throws IOException {
      this.out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 20));
      this.ahead = ahead;
      out.writeByte(name);
    }
  }

  /**
   * Streams every page over {@code bulk} (and wanted pages over {@code priority}) and waits
   * for the target's acknowledgement, which comes on the bulk lane.
   *
   * @throws IOException when a connection breaks, the target refuses, or a page is unreadable
   */
  public Stats run(Socket bulk, Socket priority) throws IOException {
    long t0 = System.nanoTime();
    sockets = new Socket[] {bulk, priority};
    if (stopped) {
      throw new IOException("page pump stopped");
    }
    Lane main = new Lane(bulk, PumpProtocol.LANE_BULK, false);
    Lane fast = new Lane(priority, PumpProtocol.LANE_PRIORITY, true);
    main.out.flush();
    fast.out.flush();
    CompletableFuture<Long> ack = new CompletableFuture<>();
    DataInputStream bulkIn = new DataInputStream(bulk.getInputStream());
    DataInputStream priorityIn = new DataInputStream(priority.getInputStream());
    daemon("ferry-pump-ack", () -> readAck(bulkIn, ack));
    daemon("ferry-pump-wants", () -> readWants(priorityIn));
    CompletableFuture<Void> wantsServed = new CompletableFuture<>();
    daemon("ferry-pump-priority", () -> {
      try {
        serveWants(fast);
        wantsServed.complete(null);
      } catch (IOException | RuntimeException e) {
        wantsServed.completeExceptionally(e);
      }
    });
    try {
      boolean held = holding;
      if (held) {
        sendRecentlyWritten(main);
      }
      while (holding && !stopped) {
        if (ack.isCompletedExceptionally()) {
          // the target closed the lanes while the pump was held (its store gives up on a bulk
          // lane that stayed silent for its stall time, e.g. across a cut link): it waits for
          // the pump to connect again, which a pump still holding would never do
          throw new IOException("the target closed the page pump's connection while the pump was held",
              exceptionOf(ack));
        }
        Thread.sleep(5);
      }
      if (held) {
        awaitFaultsQuiet();
      }
      for (CriuPagemap.LazyRange r : ranges) {
        for (int done = 0; done < r.nrPages(); ) {
          int n = Math.min(PumpProtocol.MAX_RUN, r.nrPages() - done);
          send(main, r.pid(), r.vaddr() + (long) done * PumpProtocol.PAGE, n);
          done += n;
          if (System.nanoTime() - main.lastFlush > FLUSH_NANOS) {
            // "kept" records are tiny: without this they would sit in the buffer while a
            // restored pod waits for the pages they confirm
            main.out.flush();
            main.lastFlush = System.nanoTime();
          }
        }
      }
      wants.add(NO_MORE);
      wantsServed.get(60, TimeUnit.SECONDS);
      main.out.writeByte(PumpProtocol.END);
      main.out.writeLong(main.pages + fast.pages);
      main.out.flush();
      long confirmed = ack.get(60, TimeUnit.SECONDS);
      if (confirmed != main.pages + fast.pages) {
        throw new IOException("target stored " + confirmed + " pages of " + (main.pages + fast.pages));
      }
    } catch (java.util.concurrent.ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
    } catch (java.util.concurrent.TimeoutException e) {
      throw new IOException("target did not confirm the pages within 60 s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } finally {
      wants.add(NO_MORE);
    }
    return new Stats(main.pages + fast.pages, main.kept + fast.kept, main.literal + fast.literal, fast.pages, recentSent,
        main.bytes + fast.bytes, (System.nanoTime() - t0) / 1_000_000);
  }

  /**
   * Released (the restored pod's network just opened), a held pump lets the pod's first
   * requests fault in what they touch before its bulk pass starts: on a machine of few CPUs the
   * pass (reading, hashing and sending every page, and the target storing them) otherwise took
   * the CPUs from those faults' round trips at the very moment the clients' requests arrive.
   * It waits until no fault came for {@link #FAULTS_QUIET_NANOS} (counted from the release, so
   * that the first request has time to arrive), at most {@link #RELEASE_WAIT_MAX_NANOS}.
   */
  private void awaitFaultsQuiet() throws InterruptedException {
    long released = System.nanoTime();
    while (!stopped) {
      long now = System.nanoTime();
      if (now - released > RELEASE_WAIT_MAX_NANOS || now - Math.max(released, lastFaultNanos) > FAULTS_QUIET_NANOS) {
        return;
      }
      Thread.sleep(2);
    }
  }

  private static Throwable exceptionOf(CompletableFuture<?> failed) {
    try {
      failed.getNow(null);
      return null;
    } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
      return e.getCause() != null ? e.getCause() : e;
    }
  }

  private static void daemon(String name, Runnable r) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    t.start();
  }

  private void readAck(DataInputStream in, CompletableFuture<Long> ack) {
    try {
      byte kind = in.readByte();
      if (kind == PumpProtocol.ACK) {
        ack.complete(in.readLong());
      } else {
        throw new IOException("target refused the pages: " + in.readUTF());
      }
    } catch (IOException e) {
      ack.completeExceptionally(e);
    }
  }

  private void readWants(DataInputStream in) {
    try {
      while (true) {
        byte kind = in.readByte();
        if (kind != PumpProtocol.WANT) {
          throw new IOException("unexpected record " + kind + " on the priority lane");
        }
        long[] want = {in.readLong(), in.readLong(), in.readInt()};
        if (want[2] <= FAULT_PAGES) {
          lastFaultNanos = System.nanoTime();
        }
        wants.add(want);
      }
    } catch (IOException e) {
      // the lane closed: the pump is over (or the target is gone, which the bulk lane reports)
    }
  }

  /**
   * Sends the pages the target waits for: what was asked (a whole request of CRIU's daemon, up
   * to 4 MiB), and at least 16 pages from a faulting address (neighbours are likely next). Ends
   * at {@link #NO_MORE}.
   *
   * <p>A long want goes a run ({@link PumpProtocol#MAX_RUN} pages) at a time, and a want that
   * arrives meanwhile goes before the rest of it: the restored process faults on single pages
   * while CRIU's daemon fills the memory in the background with 4 MiB requests, and a fault
   * that waited for such a request to be served whole waited for megabytes to be read, hashed
   * and sent first. (CRIU's daemon takes the runs of a long request that arrived and asks for
   * the rest again later; the rest is sent anyway, and then is here when it does.)
   */
  private void serveWants(Lane lane) throws IOException {
    java.util.ArrayDeque<long[]> rest = new java.util.ArrayDeque<>(); // {pid, next address, end address}
    try {
      while (true) {
        long[] w = rest.isEmpty() ? wants.take() : wants.poll();
        long[] job;
        if (w == NO_MORE) {
          break;
        } else if (w != null) {
          CriuPagemap.LazyRange r = rangeOf(w[0], w[1]);
          if (r == null || stopped) {
            continue; // not a lazy page: the target will say so
          }
          long end = r.vaddr() + (long) r.nrPages() * PumpProtocol.PAGE;
          long n = Math.min(Math.min(Math.max(w[2], 16), 1024), (end - w[1]) / PumpProtocol.PAGE);
          job = new long[] {w[0], w[1], w[1] + n * PumpProtocol.PAGE};
        } else {
          job = rest.pollFirst(); // nothing new waits: go on with the latest long want
        }
        int k = (int) Math.min(PumpProtocol.MAX_RUN, (job[2] - job[1]) / PumpProtocol.PAGE);
        send(lane, job[0], job[1], k);
        lane.out.flush();
        job[1] += (long) k * PumpProtocol.PAGE;
        if (job[1] < job[2]) {
          rest.addFirst(job);
        }
      }
      lane.out.writeByte(PumpProtocol.END);
      lane.out.writeLong(lane.pages);
      lane.out.flush();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  /**
   * While held (the pod is about to be restored on the target and will fault on its pages):
   * sends first the pages the last pre-copy round found changed, the pages the app wrote most
   * recently and likely touches first. Each one the target lacks would otherwise cost the restored
   * app a round trip to this pump while it serves its first requests. Skipped when the last round
   * changed more than {@link #RECENT_LIMIT_PAGES} (a round that did not converge says nothing of a
   * working set).
   */
  private void sendRecentlyWritten(Lane lane) throws IOException {
    if (held == null) {
      return;
    }
    Map<Long, long[]> recent = new HashMap<>();
    long total = 0;
    for (CriuPagemap.LazyRange r : ranges) {
      if (!recent.containsKey(r.pid())) {
        long[] pages = held.lastRoundChanged(r.pid());
        recent.put(r.pid(), pages);
        total += pages.length;
      }
    }
    if (total == 0 || total > RECENT_LIMIT_PAGES) {
      recentSent = total == 0 ? 0 : -1;
      return;
    }
    long before = lane.pages;
    for (Map.Entry<Long, long[]> e : recent.entrySet()) {
      long pid = e.getKey();
      long[] pages = e.getValue();
      for (int i = 0; i < pages.length && !stopped; ) {
        CriuPagemap.LazyRange r = rangeOf(pid, pages[i]);
        if (r == null) {
          i++; // not a lazy page of the dump (its contents went with the images)
          continue;
        }
        long end = r.vaddr() + (long) r.nrPages() * PumpProtocol.PAGE;
        int n = 1;
        while (i + n < pages.length && n < PumpProtocol.MAX_RUN && pages[i + n] == pages[i] + (long) n * PumpProtocol.PAGE
            && pages[i + n] < end) {
          n++;
        }
        send(lane, pid, pages[i], n, true);
        i += n;
      }
    }
    lane.out.flush();
    recentSent = lane.pages - before;
  }

  /** Above this many recently written pages (64 MiB) none are sent ahead. */
  static final long RECENT_LIMIT_PAGES = 16_384;

  private CriuPagemap.LazyRange rangeOf(long pid, long vaddr) {
    for (CriuPagemap.LazyRange r : ranges) {
      if (r.pid() == pid && vaddr >= r.vaddr() && vaddr < r.vaddr() + (long) r.nrPages() * PumpProtocol.PAGE) {
        return r;
      }
    }
    return null;
  }

  /** Reads n pages and sends them as kept/literal records; skips pages already sent ahead. */
  private void send(Lane lane, long pid, long vaddr, int n) throws IOException {
    send(lane, pid, vaddr, n, lane.ahead);
  }

  /**
   * As above; with {@code ahead} the pages are claimed (the sequential pass skips them) and
   * skipped if another lane claimed them first.
   */
  private void send(Lane lane, long pid, long vaddr, int n, boolean ahead) throws IOException {
    if (stopped) {
      throw new IOException("page pump stopped");
    }
    lane.buf.clear().limit(n * PumpProtocol.PAGE);
    if (!memory.read(pid, vaddr, lane.buf)) {
      throw new IOException("page 0x" + Long.toHexString(vaddr) + " of frozen pid " + pid + " is unreadable");
    }
    boolean[] skip = new boolean[n];
    synchronized (sentAhead) {
      LongHashSet already = sentAhead.computeIfAbsent(pid, p -> new LongHashSet());
      for (int i = 0; i < n; i++) {
        long a = vaddr + (long) i * PumpProtocol.PAGE;
        skip[i] = ahead ? !already.add(a) : already.contains(a);
      }
    }
    int runStart = -1;
    byte runKind = 0;
    for (int i = 0; i <= n; i++) {
      byte kind = 0;
      if (i < n && !skip[i]) {
        long a = vaddr + (long) i * PumpProtocol.PAGE;
        kind = held != null && held.targetHolds(pid, a, PageHash.of(lane.buf, i * PumpProtocol.PAGE))
            ? PumpProtocol.KEPT : PumpProtocol.LITERAL;
      }
      if (runStart >= 0 && kind != runKind) {
        record(lane, runKind, pid, vaddr + (long) runStart * PumpProtocol.PAGE, runStart, i - runStart);
        runStart = -1;
      }
      if (kind != 0 && runStart < 0) {
        runStart = i;
        runKind = kind;
      }
    }
  }

  private void record(Lane lane, byte kind, long pid, long vaddr, int first, int count) throws IOException {
    CRC32C crc = new CRC32C();
    crc.update(ByteBuffer.allocate(20).putLong(pid).putLong(vaddr).putInt(count).flip());
    lane.out.writeByte(kind);
    lane.out.writeLong(pid);
    lane.out.writeLong(vaddr);
    lane.out.writeInt(count);
    if (kind == PumpProtocol.LITERAL) {
      int len = count * PumpProtocol.PAGE;
      lane.buf.get(first * PumpProtocol.PAGE, lane.copy, 0, len);
      crc.update(lane.copy, 0, len);
      if (!lane.ahead) { // what a restored pod waits for is not held back
        if (limiter != null) {
          limiter.acquire(len);
        }
        if (hostCap != null) {
          hostCap.acquire(len);
        }
      }
      lane.out.write(lane.copy, 0, len);
      lane.literal += count;
      lane.bytes += len;
    } else {
      lane.kept += count;
    }
    lane.out.writeInt((int) crc.getValue());
    lane.bytes += 25;
    lane.pages += count;
  }
}
