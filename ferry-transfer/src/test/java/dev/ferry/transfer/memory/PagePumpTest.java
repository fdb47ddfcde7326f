package dev.ferry.transfer.memory;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The page pump end to end over loopback sockets: a frozen "process" whose memory partly
 * changed since a pre-copy round, the target's store, and a client that speaks CRIU's
 * lazy-pages protocol to {@link CriuPageServer}. Every page served must be the frozen content;
 * unchanged pages must not cross again; a page asked for early must come ahead of the rest.
 */
class PagePumpTest {
  static final int PAGE = 4096;
  static final long PID = 1;
  @TempDir Path tmp;
  final FakeAddressSpace memory = new FakeAddressSpace(7);

  /** One GET as CRIU's lazy-pages daemon sends it; returns pages served. */
  static int get(Socket daemon, long vaddr, int n, byte[][] into) throws IOException {
    ByteBuffer h = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(CriuPageServer.PS_IOV_GET).putInt(0).putLong(n).putLong(vaddr).putLong(PID);
    daemon.getOutputStream().write(h.array());
    DataInputStream in = new DataInputStream(daemon.getInputStream());
    byte[] head = new byte[32];
    in.readFully(head);
    ByteBuffer r = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN);
    assertThat(r.getInt(0) & 0xffff).isEqualTo(CriuPageServer.PS_IOV_ADD_F);
    assertThat(r.getLong(16)).isEqualTo(vaddr);
    assertThat(r.getLong(24)).isEqualTo(PID);
    int got = (int) r.getLong(8);
    for (int i = 0; i < got; i++) {
      into[i] = new byte[PAGE];
      in.readFully(into[i]);
    }
    return got;
  }

  /** A pre-copy round of the whole fake memory into {@code held}. */
  /** Runs {@code pump} over the two lanes in the background, as its agent does. */
  /** A plain connection to {@code hostPort} ("ip:port", as the receivers and servers give their address). */
  private static Socket connect(String hostPort) throws IOException {
    int colon = hostPort.lastIndexOf(':');
    return new Socket(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
  }

  private static CompletableFuture<PagePump.Stats> runInBackground(PagePump pump, Socket bulk, Socket priority) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return pump.run(bulk, priority);
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
  }

  private void round(SourcePages held, int n) throws IOException {
    SourcePages.RoundFile rf = held.openRound(PID, tmp.resolve("mem/round-" + n + "/1.pages"));
    for (var e : memory.pages.entrySet()) {
      rf.pages(e.getKey(), ByteBuffer.wrap(e.getValue()), 1);
    }
    rf.close();
    rf.commit();
  }

  @Test
  void servesTheFrozenContentsAndResendsOnlyWhatChangedSinceTheRound() throws Exception {
    memory.fill(0x10000, 600);
    SourcePages held = new SourcePages();
    round(held, 1);
    // the app keeps writing pages 10 and 11: the second round finds only them changed
    memory.dirty(0x10000 + 10L * PAGE);
    memory.dirty(0x10000 + 11L * PAGE);
    round(held, 2);
    // after the rounds: 3 pages change, then the pod is frozen
    for (int i : new int[] {10, 11, 500}) {
      memory.dirty(0x10000 + (long) i * PAGE);
    }

    TargetPageStore store = TargetPageStore.open(tmp.resolve("mem"), tmp.resolve("arrived.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000);
    CriuPageServer server = new CriuPageServer(store, 10_000);
    PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x10000, 600)), held, memory.reader());

    // the restored process faults on page 590 before the pump got there
    try (Socket daemon = connect(server.address())) {
      CompletableFuture<byte[][]> early = CompletableFuture.supplyAsync(() -> {
        try {
          byte[][] pages = new byte[1024][];
          get(daemon, 0x10000 + 590L * PAGE, 1, pages);
          return pages;
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      Thread.sleep(200); // the request waits: nothing has been pumped yet
      assertThat(early).isNotDone();
      PagePump.Stats stats;
      try (Socket s = connect(receiver.address()); Socket p = connect(receiver.address())) {
        pump.hold(); // as during a restore: only pages asked for
        CompletableFuture<PagePump.Stats> running = runInBackground(pump, s, p);
        assertThat(early.get(10, TimeUnit.SECONDS)[0]).isEqualTo(memory.page(0x10000 + 590L * PAGE));
        // while held: the wanted page and the 9 after it, and the 2 pages the last round found
        // changed (the app's latest writes), sent unasked; nothing else
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (store.readyPages() < 12 && System.nanoTime() < deadline) {
          Thread.sleep(10);
        }
        Thread.sleep(200);
        assertThat(store.readyPages()).isEqualTo(12);
        byte[][] recent = new byte[1024][];
        assertThat(get(daemon, 0x10000 + 10L * PAGE, 2, recent)).isEqualTo(2); // served at once, no want
        assertThat(recent[0]).isEqualTo(memory.page(0x10000 + 10L * PAGE));
        assertThat(recent[1]).isEqualTo(memory.page(0x10000 + 11L * PAGE));
        pump.release();
        stats = running.get(10, TimeUnit.SECONDS);
      }
      assertThat(stats.literalPages()).isEqualTo(3); // only the changed pages crossed
      assertThat(stats.keptPages()).isEqualTo(597);
      assertThat(stats.wantedPages()).isEqualTo(10); // 590..599 went ahead, once
      assertThat(stats.pages()).isEqualTo(600); // 10 and 11 too: sent ahead once, not again by the pass
      assertThat(receiver.done().get(5, TimeUnit.SECONDS)).isEqualTo(stats.pages());

      // the daemon now reads everything, in big requests
      byte[][] pages = new byte[1024][];
      long a = 0x10000;
      while (a < 0x10000 + 600L * PAGE) {
        int n = get(daemon, a, 1024, pages);
        assertThat(n).isPositive();
        for (int i = 0; i < n; i++) {
          assertThat(pages[i]).as("page 0x%x", a + (long) i * PAGE).isEqualTo(memory.page(a + (long) i * PAGE));
        }
        a += (long) n * PAGE;
      }
      ByteBuffer close = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN).putInt(CriuPageServer.PS_IOV_CLOSE);
      daemon.getOutputStream().write(close.array());
      assertThat(new DataInputStream(daemon.getInputStream()).readInt()).isZero();
    }
    assertThat(server.done().get(5, TimeUnit.SECONDS)).isGreaterThanOrEqualTo(600);
    store.close();
  }

  /**
   * CRIU's daemon fills memory in the background with 4 MiB requests while the restored
   * process faults on single pages: a fault asked for while such a request is being served
   * goes before the rest of it, not after 1024 pages were read, hashed and sent.
   */
  @Test
  void aFaultAskedForDuringALongBackgroundRequestGoesBeforeTheRestOfIt() throws Exception {
    memory.fill(0x100000, 2048);
    List<Long> reads = new java.util.concurrent.CopyOnWriteArrayList<>();
    PagePump.Memory slow = (pid, vaddr, buf) -> {
      reads.add(vaddr);
      try {
        // a run takes a while to read and hash, as 1 MiB of a big process does (long enough here
        // that the fault's want arrives while the request's second run is read, even on a slow machine)
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return memory.reader().read(pid, vaddr, buf);
    };
    TargetPageStore store = TargetPageStore.open(tmp.resolve("none3"), tmp.resolve("arrived3.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000);
    CriuPageServer server = new CriuPageServer(store, 10_000);
    PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x100000, 2048)), null, slow);
    long fault = 0x100000 + 1500L * PAGE;
    try (Socket daemon = connect(server.address());
        Socket s = connect(receiver.address()); Socket p = connect(receiver.address())) {
      pump.hold(); // as during the restore and until the network opens: only what is asked for
      CompletableFuture<PagePump.Stats> running = runInBackground(pump, s, p);
      byte[][] pages = new byte[1024][];
      // the background request is answered with its first run; the fault follows it on the
      // same connection, as CRIU's daemon sends them
      int first = get(daemon, 0x100000, 1024, pages);
      assertThat(first).isBetween(1, 1024);
      assertThat(get(daemon, fault, 1, pages)).isPositive();
      assertThat(pages[0]).isEqualTo(memory.page(fault));
      pump.release();
      running.get(30, TimeUnit.SECONDS);
    }
    int faultRead = reads.indexOf(fault);
    int lastRunOfTheRequest = reads.indexOf(0x100000 + 768L * PAGE);
    assertThat(faultRead).as("reads in order: %s", reads).isPositive();
    assertThat(faultRead).as("the fault's run came before the background request's last run: %s", reads)
        .isLessThan(lastRunOfTheRequest);
    store.close();
  }

  /**
   * Released as the restored pod's network opens, a held pump serves the faults of the pod's
   * first requests before its bulk pass starts reading every page (which on few CPUs took the
   * CPUs from those faults' round trips); then the pass runs and the store is complete.
   */
  @Test
  void afterTheReleaseTheFirstFaultsGoBeforeTheBulkPass() throws Exception {
    memory.fill(0x200000, 256);
    List<Long> reads = new java.util.concurrent.CopyOnWriteArrayList<>();
    PagePump.Memory recording = (pid, vaddr, buf) -> {
      reads.add(vaddr);
      return memory.reader().read(pid, vaddr, buf);
    };
    TargetPageStore store = TargetPageStore.open(tmp.resolve("none4"), tmp.resolve("arrived4.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000);
    CriuPageServer server = new CriuPageServer(store, 10_000);
    PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x200000, 256)), null, recording);
    long fault = 0x200000 + 200L * PAGE;
    try (Socket daemon = connect(server.address());
        Socket s = connect(receiver.address()); Socket p = connect(receiver.address())) {
      pump.hold();
      CompletableFuture<PagePump.Stats> running = runInBackground(pump, s, p);
      Thread.sleep(100);
      assertThat(reads).as("read while held, nothing asked").isEmpty();
      pump.release(); // the network opened; the first request faults right after
      byte[][] pages = new byte[1024][];
      assertThat(get(daemon, fault, 1, pages)).isPositive();
      assertThat(pages[0]).isEqualTo(memory.page(fault));
      assertThat(running.get(10, TimeUnit.SECONDS).pages()).isEqualTo(256);
    }
    assertThat(reads.get(0)).as("the fault's run read before the bulk pass: %s", reads).isEqualTo(fault);
    assertThat(reads).as("then the bulk pass").contains(0x200000L);
    store.close();
  }

  /**
   * A held pump's bulk lane is silent, and a target whose store gives up on a silent lane (its
   * stall time passed, say across a cut link) closes both lanes and waits for the pump to come
   * back: the pump must stop holding and fail as a broken connection (which its agent answers by
   * connecting again), not hold on forever while the restored pod waits for its pages.
   */
  @Test
  void aHeldPumpWhoseLanesTheTargetClosedFailsAsABrokenConnection() throws Exception {
    memory.fill(0x40000, 64);
    TargetPageStore store = TargetPageStore.open(tmp.resolve("none4"), tmp.resolve("arrived4.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 300, 30_000); // gives up on 300 ms of silence
    PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x40000, 64)), null, memory.reader());
    try (Socket s = connect(receiver.address()); Socket p = connect(receiver.address())) {
      pump.hold(); // and never released: the restore that would lead to the release waits for pages
      CompletableFuture<PagePump.Stats> running = CompletableFuture.supplyAsync(() -> {
        try {
          return pump.run(s, p);
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> running.get(10, TimeUnit.SECONDS))
          .hasRootCauseInstanceOf(java.io.EOFException.class)
          .hasMessageContaining("closed the page pump's connection while the pump was held");
    }
    // a pump that connects again (unheld, as an agent's next attempt is) fills the store
    try (Socket s = connect(receiver.address()); Socket p = connect(receiver.address())) {
      PagePump again = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x40000, 64)), null, memory.reader());
      assertThat(again.run(s, p).pages()).isEqualTo(64);
    }
    assertThat(receiver.done().get(10, TimeUnit.SECONDS)).isEqualTo(64);
    store.close();
  }

  @Test
  void aPumpWithoutRoundsSendsEverything() throws Exception {
    memory.fill(0x20000, 40);
    TargetPageStore store = TargetPageStore.open(tmp.resolve("none"), tmp.resolve("arrived2.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000);
    PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x20000, 40)), null, memory.reader());
    try (Socket s = connect(receiver.address()); Socket p = connect(receiver.address())) {
      PagePump.Stats st = pump.run(s, p);
      assertThat(st.literalPages()).isEqualTo(40);
      assertThat(st.keptPages()).isZero();
    }
    assertThat(store.isComplete()).isTrue();
    assertThat(store.readyPages()).isEqualTo(40);
    store.close();
  }

  /**
   * Over mutual TLS (as between agents with the lab's identities): every page arrives; a peer
   * of another CA, and a plain TCP one, are dropped at the port without failing the store,
   * which then takes the real pump's pages.
   */
  @Test
  void overMutualTlsStrangersAreDroppedAndThePumpGetsThrough() throws Exception {
    dev.ferry.transfer.LabCa.ensure(tmp.resolve("ca"), "lab").issue(tmp.resolve("a"), "host-a", "127.0.0.1");
    dev.ferry.transfer.LabCa.ensure(tmp.resolve("ca"), "lab").issue(tmp.resolve("b"), "host-b", "127.0.0.1");
    dev.ferry.transfer.LabCa.ensure(tmp.resolve("other-ca"), "other").issue(tmp.resolve("x"), "host-a", "127.0.0.1");
    dev.ferry.transfer.PeerTls source = dev.ferry.transfer.PeerTls.load(tmp.resolve("a"));
    dev.ferry.transfer.PeerTls target = dev.ferry.transfer.PeerTls.load(tmp.resolve("b"));
    dev.ferry.transfer.PeerTls stranger = dev.ferry.transfer.PeerTls.load(tmp.resolve("x"));
    memory.fill(0x30000, 300);
    TargetPageStore store = TargetPageStore.open(tmp.resolve("tls"), tmp.resolve("arrived-tls.pages"));
    try (PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000, 0, target)) {
      org.assertj.core.api.Assertions.assertThatThrownBy(() -> stranger.connect(receiver.address(), 5000).close())
          .isInstanceOf(IOException.class);
      try (Socket plain = connect(receiver.address())) {
        plain.getOutputStream().write(PumpProtocol.LANE_BULK); // a lane byte in clear is no TLS record
        plain.setSoTimeout(5000);
        try {
          plain.getInputStream().read();
        } catch (IOException e) {
          // reset: dropped
        }
      }
      PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x30000, 300)), null, memory.reader());
      try (Socket s = source.connect(receiver.address(), 5000); Socket p = source.connect(receiver.address(), 5000)) {
        assertThat(dev.ferry.transfer.PeerTls.session(s).getProtocol()).isEqualTo("TLSv1.3");
        PagePump.Stats st = pump.run(s, p);
        assertThat(st.literalPages()).isEqualTo(300);
      }
      assertThat(receiver.done().get(10, TimeUnit.SECONDS)).isEqualTo(300);
      assertThat(receiver.sessions()).isEqualTo(1);
    }
    assertThat(store.isComplete()).isTrue();
    for (var e : memory.pages.entrySet()) {
      if (e.getKey() >= 0x30000 && e.getKey() < 0x30000 + 300L * PAGE) {
        ByteBuffer got = ByteBuffer.allocate(PAGE);
        assertThat(store.serve(PID, e.getKey(), 1, got, 1000)).isEqualTo(1);
        assertThat(got.array()).as("page 0x%x as the pump read it", e.getKey()).isEqualTo(e.getValue());
      }
    }
    store.close();
  }

  /** A source agent killed mid-pump and restarted: its new pump sends everything again. */
  @Test
  void aPumpThatComesBackAfterItsConnectionBrokeFinishesTheStore() throws Exception {
    memory.fill(0x30000, 64);
    TargetPageStore store = TargetPageStore.open(tmp.resolve("none3"), tmp.resolve("arrived3.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000, 10_000);
    CriuPageServer server = new CriuPageServer(store, 20_000);
    try (Socket daemon = connect(server.address())) {
      byte[][] pages = new byte[1024][];
      PagePump first = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x30000, 64)), null, memory.reader());
      first.hold(); // only what is asked for: the rest is still on its way when the pump dies
      Socket s = connect(receiver.address());
      Socket p = connect(receiver.address());
      CompletableFuture<PagePump.Stats> running = runInBackground(first, s, p);
      assertThat(get(daemon, 0x30000 + 5L * PAGE, 1, pages)).isEqualTo(1);
      s.close(); // the source agent is killed
      p.close();
      assertThat(running).failsWithin(5, TimeUnit.SECONDS);

      // the restored process faults on a page that has not come; it waits for the pump's return
      CompletableFuture<byte[]> waiting = CompletableFuture.supplyAsync(() -> {
        try {
          byte[][] one = new byte[1][];
          get(daemon, 0x30000 + 40L * PAGE, 1, one);
          return one[0];
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      Thread.sleep(300);
      assertThat(waiting).isNotDone();
      assertThat(receiver.done()).isNotDone();

      PagePump again = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x30000, 64)), null, memory.reader());
      try (Socket s2 = connect(receiver.address()); Socket p2 = connect(receiver.address())) {
        assertThat(again.run(s2, p2).pages()).isGreaterThanOrEqualTo(64);
      }
      assertThat(waiting.get(5, TimeUnit.SECONDS)).isEqualTo(memory.page(0x30000 + 40L * PAGE));
      assertThat(receiver.done().get(5, TimeUnit.SECONDS)).isGreaterThanOrEqualTo(64);
      assertThat(receiver.sessions()).isEqualTo(2);
      for (long a = 0x30000; a < 0x30000 + 64L * PAGE; a += PAGE) {
        assertThat(get(daemon, a, 1, pages)).isEqualTo(1);
        assertThat(pages[0]).as("page 0x%x", a).isEqualTo(memory.page(a));
      }
    }
    store.close();
  }

  @Test
  void withoutAReconnectWindowABrokenPumpFailsTheStore() throws Exception {
    memory.fill(0x40000, 16);
    TargetPageStore store = TargetPageStore.open(tmp.resolve("none4"), tmp.resolve("arrived4.pages"));
    PumpReceiver receiver = new PumpReceiver("127.0.0.1", store, 10_000);
    PagePump pump = new PagePump(List.of(new CriuPagemap.LazyRange(PID, 0x40000, 16)), null, memory.reader());
    pump.hold();
    Socket s = connect(receiver.address());
    Socket p = connect(receiver.address());
    CompletableFuture.runAsync(() -> {
      try {
        pump.run(s, p);
      } catch (IOException e) {
        // expected: closed below
      }
    });
    Thread.sleep(200);
    s.close();
    p.close();
    assertThat(receiver.done()).failsWithin(5, TimeUnit.SECONDS);
    assertThat(store.isComplete()).isFalse();
    store.close();
  }
}
