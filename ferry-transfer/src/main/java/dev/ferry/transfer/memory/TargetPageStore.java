package dev.ferry.transfer.memory;

import java.io.Closeable;
import java.io.DataInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import com.carrotsearch.hppc.LongLongHashMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * The target's copy of a frozen pod's memory while it arrives: pages from pre-copy rounds that
 * the source confirmed current, and pages the pump sent. {@link CriuPageServer} serves CRIU's
 * lazy-pages daemon from it; a page not there yet is asked for ({@link #onWant}) and waited for.
 */
public final class TargetPageStore implements Closeable {
  static final int PAGE_SIZE = PumpProtocol.PAGE;
  private final TargetPages.Index rounds;
  private final FileChannel arrived;
  private final int arrivedNo;
  private long arrivedEnd;
  /** Pages ready to be served: pid to page address to location ({@link TargetPages.Index} encoding). */
  private final Map<Long, LongLongHashMap> ready = new HashMap<>();
  private final Set<Long> wanted = new HashSet<>();
  /** Wants sent, as {pid, vaddr, count}, to be asked again of a pump that connects anew. */
  private final java.util.List<long[]> askedFor = new java.util.ArrayList<>();
  private long readyPages;
  private boolean complete;
  private String failure;
  private WantListener onWant = (pid, vaddr, count) -> {};

  /** Told which pages someone waits for. */
  @FunctionalInterface
  public interface WantListener {
    void want(long pid, long vaddr, int count);
  }

  private TargetPageStore(TargetPages.Index rounds, Path arrivedFile) throws IOException {
    this.rounds = rounds;
    this.arrived = FileChannel.open(arrivedFile, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
        StandardOpenOption.READ, StandardOpenOption.WRITE);
    this.arrivedNo = rounds.addFile(arrivedFile, arrived);
  }

  /**
   * @param memDir where pre-copy rounds landed (may not exist: no rounds)
   * @param arrivedFile where pages sent by the pump are kept (tmpfs)
   */
  public static TargetPageStore open(Path memDir, Path arrivedFile) throws IOException {
    return new TargetPageStore(TargetPages.Index.of(memDir), arrivedFile);
  }

  /** Called (outside the store's lock) with pid and address of a page someone waits for. */
  public synchronized void onWant(WantListener w) {
    this.onWant = w;
  }

  /** The source says the round copy of these pages is current. */
  synchronized void kept(long pid, long vaddr, int count) throws IOException {
    LongLongHashMap fromRounds = rounds.pages.getOrDefault(pid, new LongLongHashMap(0));
    LongLongHashMap r = ready.computeIfAbsent(pid, p -> new LongLongHashMap());
    for (int i = 0; i < count; i++) {
      long a = vaddr + (long) i * PumpProtocol.PAGE;
      long where = fromRounds.getOrDefault(a, -1);
      if (where < 0) {
        throw new IOException("source keeps page 0x" + Long.toHexString(a) + " of pid " + pid
            + " that no pre-copy round delivered here");
      }
      if (!r.containsKey(a)) {
        readyPages++;
      }
      r.put(a, where);
    }
    notifyAll();
  }

  /** Pages sent by the pump: stored, then ready. */
  void literal(long pid, long vaddr, int count, ByteBuffer data) throws IOException {
    long at;
    synchronized (this) {
      at = arrivedEnd;
      arrivedEnd += (long) count * PumpProtocol.PAGE;
    }
    long pos = at;
    while (data.hasRemaining()) {
      pos += arrived.write(data, pos);
    }
    synchronized (this) {
      LongLongHashMap r = ready.computeIfAbsent(pid, p -> new LongLongHashMap());
      for (int i = 0; i < count; i++) {
        long a = vaddr + (long) i * PumpProtocol.PAGE;
        if (!r.containsKey(a)) {
          readyPages++;
        }
        r.put(a, TargetPages.Index.encode(arrivedNo, at + (long) i * PumpProtocol.PAGE));
      }
      notifyAll();
    }
  }

  /** Asks again for every page asked for that has not arrived (a pump connected anew). */
  synchronized void askAgain() {
    askedFor.removeIf(w -> location(w[0], w[1]) != null);
    for (long[] w : askedFor) {
      onWant.want(w[0], w[1], (int) w[2]);
    }
  }

  /** Every page has arrived. */
  synchronized void complete() {
    complete = true;
    notifyAll();
  }

  /** The pump broke: whoever waits gets this reason. */
  public synchronized void fail(String why) {
    failure = why;
    notifyAll();
  }

  public synchronized boolean isComplete() {
    return complete;
  }

  public synchronized long readyPages() {
    return readyPages;
  }

  /**
   * Copies up to {@code max} consecutive ready pages from {@code vaddr} into {@code out}, waiting
   * up to {@code timeoutMs} for the first one.
   *
   * @return pages copied (at least 1)
   * @throws IOException when the page does not come: the pump failed, or it never sends it
   */
  public int serve(long pid, long vaddr, int max, ByteBuffer out, long timeoutMs) throws IOException {
    long[] locations = new long[max];
    int n;
    synchronized (this) {
      long deadline = System.currentTimeMillis() + timeoutMs;
      boolean asked = false;
      while (location(pid, vaddr) == null) {
        if (failure != null) {
          throw new IOException("page 0x" + Long.toHexString(vaddr) + " of pid " + pid + " cannot come: " + failure);
        }
        if (complete) {
          throw new IOException("page 0x" + Long.toHexString(vaddr) + " of pid " + pid + " is not part of the dump");
        }
        if (!asked && wanted.add(vaddr)) {
          asked = true;
          askedFor.add(new long[] {pid, vaddr, max});
          onWant.want(pid, vaddr, max); // only enqueues: safe under the lock
        }
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) {
          throw new IOException("page 0x" + Long.toHexString(vaddr) + " of pid " + pid + " did not arrive within "
              + timeoutMs + " ms");
        }
        try {
          wait(left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted", e);
        }
      }
      n = 0;
      while (n < max) {
        Long l = location(pid, vaddr + (long) n * PumpProtocol.PAGE);
        if (l == null) {
          break;
        }
        locations[n++] = l;
      }
    }
    for (int i = 0; i < n; i++) {
      int file = TargetPages.Index.file(locations[i]);
      out.limit(out.position() + PumpProtocol.PAGE);
      TargetPages.readFully(rounds.channel(file), out, TargetPages.Index.offset(locations[i]), rounds.files.get(file));
    }
    return n;
  }

  private Long location(long pid, long vaddr) {
    LongLongHashMap r = ready.get(pid);
    long v = r == null ? -1 : r.getOrDefault(vaddr, -1);
    return v < 0 ? null : v;
  }

  /**
   * Reads one lane of the pump's stream until its END, storing what arrives; every record is
   * checked against its CRC32C.
   *
   * @return {pages received, the number the END carried}
   */
  long[] receive(DataInputStream in) throws IOException {
    byte[] data = new byte[PumpProtocol.MAX_RUN * PumpProtocol.PAGE];
    long pages = 0;
    while (true) {
      byte kind = in.readByte();
      if (kind == PumpProtocol.END) {
        return new long[] {pages, in.readLong()};
      }
      long pid = in.readLong();
      long vaddr = in.readLong();
      int count = in.readInt();
      if (count <= 0 || count > PumpProtocol.MAX_RUN) {
        throw new IOException("pump record with " + count + " pages");
      }
      java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
      crc.update(ByteBuffer.allocate(20).putLong(pid).putLong(vaddr).putInt(count).flip());
      if (kind == PumpProtocol.LITERAL) {
        in.readFully(data, 0, count * PumpProtocol.PAGE);
        crc.update(data, 0, count * PumpProtocol.PAGE);
        check(in.readInt(), crc, pid, vaddr);
        literal(pid, vaddr, count, ByteBuffer.wrap(data, 0, count * PumpProtocol.PAGE));
      } else if (kind == PumpProtocol.KEPT) {
        check(in.readInt(), crc, pid, vaddr);
        kept(pid, vaddr, count);
      } else {
        throw new IOException("unknown pump record kind " + kind);
      }
      pages += count;
    }
  }

  private static void check(int expected, java.util.zip.CRC32C crc, long pid, long vaddr) throws IOException {
    if ((int) crc.getValue() != expected) {
      throw new IOException("checksum mismatch in pages at 0x" + Long.toHexString(vaddr) + " of pid " + pid
          + ": corrupted in transit");
    }
  }

  @Override
  public void close() throws IOException {
    rounds.close();
  }
}
