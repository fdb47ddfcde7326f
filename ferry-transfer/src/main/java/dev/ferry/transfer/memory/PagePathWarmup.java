package dev.ferry.transfer.memory;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs the post-copy page path once, in memory and over loopback: a pre-copy round, the page
 * pump held and then released, the target's store and receiver, and a client speaking CRIU's
 * lazy-pages protocol to {@link CriuPageServer} that faults on pages early and then reads them
 * all. An agent does this a few times at start: the first hybrid migration of a fresh agent
 * otherwise serves the restored pod's first faults through interpreted code (its first reply
 * came 0.3-0.5 s after the network opened, against ~0.1 s once warm).
 */
public final class PagePathWarmup {
  private static final int PAGE = 4096;
  private static final long PID = 1;
  private static final long BASE = 0x10000;

  private PagePathWarmup() {}

  /** One pass over {@code pages} pages, using files under {@code dir} (which the caller removes). */
  public static void exercise(Path dir, int pages) throws Exception {
    Random rnd = new Random(pages);
    byte[][] memory = new byte[pages][PAGE];
    for (byte[] p : memory) {
      rnd.nextBytes(p);
    }
    SourcePages held = new SourcePages();
    SourcePages.RoundFile round = held.openRound(PID, dir.resolve("mem/round-1/1.pages"));
    for (int i = 0; i < pages; i++) {
      round.pages(BASE + (long) i * PAGE, ByteBuffer.wrap(memory[i]), 1);
    }
    round.close();
    round.commit();
    for (int i = 0; i < pages; i += 7) {
      memory[i][rnd.nextInt(PAGE)] ^= 1; // changed after the round
    }
    PagePump.Memory reader = (pid, vaddr, buf) -> {
      for (long a = vaddr; buf.hasRemaining(); a += PAGE) {
        int i = (int) ((a - BASE) / PAGE);
        if (i < 0 || i >= pages) {
          return false;
        }
        buf.put(memory[i]);
      }
      return true;
    };
    TargetPageStore store = TargetPageStore.open(dir.resolve("mem"), dir.resolve("arrived.pages"));
    try (PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000);
        CriuPageServer server = new CriuPageServer(store, 10_000)) {
      PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, BASE, pages)), held, reader);
      String[] hp = receiver.address().split(":");
      try (Socket daemon = new Socket("127.0.0.1", Integer.parseInt(server.address().split(":")[1]));
          Socket bulk = new Socket(hp[0], Integer.parseInt(hp[1]));
          Socket priority = new Socket(hp[0], Integer.parseInt(hp[1]))) {
        pump.hold(); // as during a restore: only pages asked for
        CompletableFuture<PagePump.Stats> running = CompletableFuture.supplyAsync(() -> {
          try {
            return pump.run(bulk, priority);
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        });
        for (int i = pages - 1; i > 0; i -= pages / 16 + 1) {
          get(daemon, BASE + (long) i * PAGE, 1); // faults ahead of the pump, one at a time
        }
        pump.release();
        running.get(30, TimeUnit.SECONDS);
        for (int i = 0; i < pages; ) {
          i += Math.max(1, get(daemon, BASE + (long) i * PAGE, 256));
        }
        ByteBuffer close = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN).putInt(CriuPageServer.PS_IOV_CLOSE);
        daemon.getOutputStream().write(close.array());
        new DataInputStream(daemon.getInputStream()).readInt();
      }
    } finally {
      store.close();
    }
  }

  /** One GET as CRIU's lazy-pages daemon sends it; returns the pages served. */
  private static int get(Socket daemon, long vaddr, int n) throws IOException {
    ByteBuffer h = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(CriuPageServer.PS_IOV_GET).putInt(0).putLong(n).putLong(vaddr).putLong(PID);
    OutputStream out = daemon.getOutputStream();
    out.write(h.array());
    DataInputStream in = new DataInputStream(daemon.getInputStream());
    byte[] head = new byte[32];
    in.readFully(head);
    int got = (int) ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getLong(8);
    in.skipNBytes((long) got * PAGE);
    return got;
  }
}
