package dev.ferry.transfer;

import static dev.ferry.transfer.TreeAssertions.assertSameTree;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Transfers over mutual TLS through BoringSSL ({@link TlsChannel}: direct buffers both ways) and
 * across engines (a host where BoringSSL does not load talks JSSE to one where it does): the same
 * guarantees as in clear: identical trees, every chunk checked, resume, read timeouts, abort.
 */
class TlsTransferTest {
  @TempDir Path tmp;

  private PeerTls identity(String host, boolean boringSsl) throws Exception {
    Path dir = tmp.resolve("lab-" + host);
    if (!Files.exists(dir.resolve(PeerTls.KEY))) {
      LabCa.ensure(tmp.resolve("lab"), "test lab").issue(dir, host, "127.0.0.1");
    }
    return PeerTls.load(dir, boringSsl);
  }

  private Path tree() throws IOException {
    Path src = tmp.resolve("src");
    Files.createDirectories(src.resolve("rootfs/bin"));
    byte[] big = new byte[5 * TransferProtocol.CHUNK + 4097];
    new Random(11).nextBytes(big);
    java.util.Arrays.fill(big, TransferProtocol.CHUNK, 3 * TransferProtocol.CHUNK, (byte) 0);
    Files.write(src.resolve("rootfs/bin/app"), big);
    Files.setPosixFilePermissions(src.resolve("rootfs/bin/app"), PosixFilePermissions.fromString("rwxr-x---"));
    Files.writeString(src.resolve("config.json"), "{\"a\":1}");
    Files.write(src.resolve("empty"), new byte[0]);
    Files.write(src.resolve("zeros.img"), new byte[2 * TransferProtocol.CHUNK + 5]);
    Files.createSymbolicLink(src.resolve("rootfs/bin/sh"), Path.of("app"));
    return src;
  }

  /** The server's end of a connection from {@code c}: accepted (and its handshake done) while {@code c} connects. */
  private static Socket accepted(ServerSocket server, CompletableFuture<Socket> handshaken) throws Exception {
    return handshaken.get(10, TimeUnit.SECONDS);
  }

  private static CompletableFuture<Socket> acceptAndShakeHands(ServerSocket server) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        Socket s = server.accept();
        ((TlsSocket) s).handshake();
        return s;
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
  }

  /** Who runs which engine: both BoringSSL, or one side JSSE. */
  enum Engines {
    BORINGSSL_BOTH(true, true), JSSE_SENDER(false, true), JSSE_RECEIVER(true, false);

    final boolean sender;
    final boolean receiver;

    Engines(boolean sender, boolean receiver) {
      this.sender = sender;
      this.receiver = receiver;
    }
  }

  @ParameterizedTest
  @EnumSource(Engines.class)
  void treesArriveIdenticalOffAndAuto(Engines engines) throws Exception {
    Path src = tree();
    for (Compression c : Compression.values()) {
      Path dst = tmp.resolve("dst-" + c);
      try (LoopbackTarget target =
          new LoopbackTarget(dst, identity("host-b", engines.receiver), identity("host-a", engines.sender))) {
        try (Socket s = target.dial()) {
          assertThat(s instanceof TlsSocket).as("BoringSSL's socket").isEqualTo(engines.sender);
          assertThat(PeerTls.session(s).getCipherSuite()).isEqualTo(PeerTls.PREFERRED_SUITE);
          new ImageSender(false, 0, c).send("m-" + c, List.of(new TransferSource(src, "b")), s, new TransferProgress());
        }
        assertThat(target.done.get(30, TimeUnit.SECONDS)).isEqualTo("m-" + c);
        assertThat(target.refusals).isEmpty();
        assertSameTree(src, dst.resolve("b"));
      }
    }
  }

  @Test
  void whatTheDataServerReadsThroughTheStreamTheReceiverGetsAsAlreadyRead() throws Exception {
    Path src = tree();
    Path dst = tmp.resolve("dst");
    PeerTls a = identity("host-a", true);
    PeerTls b = identity("host-b", true);
    try (ServerSocket server = b.listen("127.0.0.1", 0, 1)) {
      CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
        try (Socket s = server.accept()) { // as DataServer: the magic through the stream, the rest through the channel
          s.setSoTimeout(30_000);
          byte[] magic = s.getInputStream().readNBytes(TransferProtocol.MAGIC.length());
          return new ImageReceiver((id, inc) -> dst).receive(s, magic, () -> PeerTls.abort(s), new TransferProgress(),
              x -> {});
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      try (Socket c = a.connect("127.0.0.1:" + server.getLocalPort(), 5000)) {
        new ImageSender(false).send("m-1", List.of(new TransferSource(src, "b")), c, new TransferProgress());
      }
      assertThat(received.get(30, TimeUnit.SECONDS)).isEqualTo("m-1");
      assertSameTree(src, dst.resolve("b"));
    }
  }

  @Test
  void parallelLanesOverTlsDeliverTheSameTree() throws Exception {
    Path src = tree();
    Path dst = tmp.resolve("dst");
    try (LoopbackTarget target = new LoopbackTarget(dst, identity("host-b", true), identity("host-a", true))) {
      new ParallelSender(3, false, 0, Compression.AUTO, null)
          .send("m-1", List.of(new TransferSource(src, "b")), null, target::dial, 5_000, new TransferProgress());
      assertSameTree(src, dst.resolve("b"));
      assertThat(target.refusals).isEmpty();
    }
  }

  @Test
  void aFlippedByteIsRefusedWithFileAndOffset() throws Exception {
    Path src = tree();
    try (LoopbackTarget target = new LoopbackTarget(tmp.resolve("dst"), identity("host-b", true), identity("host-a", true))) {
      try (Socket s = target.dial()) {
        assertThatThrownBy(() -> new ImageSender(true, 0, Compression.AUTO)
                .send("m-1", List.of(new TransferSource(src, "b")), s, new TransferProgress()))
            .hasMessageContaining("checksum mismatch in b/").hasMessageContaining("at offset 0");
      }
      for (int i = 0; i < 100 && target.refusals.isEmpty(); i++) {
        Thread.sleep(50);
      }
      assertThat(target.refusals).singleElement().asString().contains("checksum mismatch in b/").contains("at offset 0");
      assertThat(target.received).isEmpty();
    }
  }

  @Test
  void aCapOf100MBpsHoldsOverTls() throws Exception {
    Path src = TreeAssertions.incompressibleTree(tmp.resolve("big"), "pages-1.img", 50);
    try (LoopbackTarget target = new LoopbackTarget(tmp.resolve("dst"), identity("host-b", true), identity("host-a", true));
        Socket s = target.dial()) {
      TransferProgress p = new TransferProgress();
      long t0 = System.nanoTime();
      new ImageSender(false, 100_000_000, Compression.AUTO).send("m-1", List.of(new TransferSource(src, "b")), s, p);
      double mbps = p.bytes() / ((System.nanoTime() - t0) / 1e9) / 1e6;
      assertThat(mbps).as("MB/s under a 100 MB/s cap").isBetween(90.0, 110.0);
      assertThat(target.done.get(10, TimeUnit.SECONDS)).isEqualTo("m-1");
    }
  }

  @Test
  void aConnectionCutMidFileResumesFromTheLastVerifiedChunk() throws Exception {
    Path dst = tmp.resolve("dst");
    try (LoopbackTarget target = new LoopbackTarget(dst, identity("host-b", true), identity("host-a", true))) {
      TreeAssertions.cutMidFileAndResume(tree(), dst, target);
    }
  }

  @Test
  void aSenderGoneSilentTimesOutTheReceiversTlsRead() throws Exception {
    PeerTls a = identity("host-a", true);
    PeerTls b = identity("host-b", true);
    ServerSocket server = b.listen("127.0.0.1", 0, 1);
    CompletableFuture<Socket> serverEnd = acceptAndShakeHands(server);
    try (server;
        Socket c = a.connect("127.0.0.1:" + server.getLocalPort(), 5000);
        Socket s = accepted(server, serverEnd)) {
      c.getOutputStream().write(TransferProtocol.MAGIC.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      c.getOutputStream().flush(); // and then nothing: a cut link
      s.setSoTimeout(500);
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> new ImageReceiver((id, inc) -> tmp.resolve("dst"))
              .receive(s, new byte[0], s, new TransferProgress(), x -> {}))
          .isInstanceOf(SocketTimeoutException.class);
      assertThat((System.nanoTime() - t0) / 1e9).isBetween(0.4, 5.0);
    }
  }

  @Test
  void aSilentClientTimesOutTheServersHandshake() throws Exception {
    PeerTls b = identity("host-b", true);
    try (ServerSocket server = b.listen("127.0.0.1", 0, 1);
        Socket c = PeerTls.PLAIN.connect("127.0.0.1:" + server.getLocalPort(), 5000); // says nothing
        Socket s = server.accept()) {
      s.setSoTimeout(500);
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> s.getInputStream().read()).isInstanceOf(SocketTimeoutException.class);
      assertThat((System.nanoTime() - t0) / 1e9).isBetween(0.4, 5.0);
    }
  }

  @Test
  void abortWakesAReaderBlockedWithoutATimeout() throws Exception {
    PeerTls a = identity("host-a", true);
    PeerTls b = identity("host-b", true);
    ServerSocket server = b.listen("127.0.0.1", 0, 1);
    CompletableFuture<Socket> serverEnd = acceptAndShakeHands(server);
    try (server;
        Socket c = a.connect("127.0.0.1:" + server.getLocalPort(), 5000);
        Socket s = accepted(server, serverEnd)) {
      c.getOutputStream().write(1);
      assertThat(s.getInputStream().read()).isEqualTo(1); // handshake done, nothing more coming
      CompletableFuture<Integer> blocked = CompletableFuture.supplyAsync(() -> {
        try {
          return c.getInputStream().read();
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      Thread.sleep(200);
      assertThat(blocked).isNotDone();
      PeerTls.abort(c);
      blocked.handle((read, failure) -> true).get(2, TimeUnit.SECONDS); // the end of the stream, or a failure
      assertThat(c.isClosed()).isTrue();
      assertThat(s.getInputStream().read()).as("the peer sees the end").isEqualTo(-1);
    }
  }
}
