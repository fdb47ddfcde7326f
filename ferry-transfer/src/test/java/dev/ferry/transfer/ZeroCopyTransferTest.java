package dev.ferry.transfer;

import static dev.ferry.transfer.TreeAssertions.assertSameTree;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Transfers over plain TCP from {@link PeerTls#PLAIN}, whose sockets have channels: chunk bodies
 * go from direct buffers and are received into direct buffers written by a {@link ChunkWriter}.
 * The same guarantees as the stream path: identical trees, every chunk and file checked, resume.
 */
class ZeroCopyTransferTest {
  @TempDir Path tmp;

  /** Files of several chunks and a partial one, an empty one, zeros, a symlink, modes. */
  private Path tree() throws IOException {
    Path src = tmp.resolve("src");
    Files.createDirectories(src.resolve("rootfs/bin"));
    byte[] big = new byte[5 * TransferProtocol.CHUNK + 4097];
    new Random(11).nextBytes(big);
    java.util.Arrays.fill(big, TransferProtocol.CHUNK, 3 * TransferProtocol.CHUNK, (byte) 0); // two zero chunks
    Files.write(src.resolve("rootfs/bin/app"), big);
    Files.setPosixFilePermissions(src.resolve("rootfs/bin/app"), PosixFilePermissions.fromString("rwxr-x---"));
    Files.writeString(src.resolve("config.json"), "{\"a\":1}");
    Files.write(src.resolve("empty"), new byte[0]);
    Files.write(src.resolve("zeros.img"), new byte[2 * TransferProtocol.CHUNK + 5]); // ends in a hole
    Files.createSymbolicLink(src.resolve("rootfs/bin/sh"), Path.of("app"));
    return src;
  }

  /** Sends {@code src} as "b" over a plain channel socket; the receiver's outcome. */
  private CompletableFuture<String> send(ImageSender sender, Path src, Path dst) throws Exception {
    try (ServerSocket server = PeerTls.PLAIN.listen("127.0.0.1", 0, 1)) {
      CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
        try (Socket s = server.accept()) {
          assertThat(s.getChannel()).as("plain sockets have channels").isNotNull();
          return new ImageReceiver((id, inc) -> dst).receive(s, new byte[0], s, new TransferProgress(), b -> {});
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      try (Socket c = PeerTls.PLAIN.connect("127.0.0.1:" + server.getLocalPort(), 5000)) {
        sender.send("m-1", List.of(new TransferSource(src, "b")), c, new TransferProgress());
      } catch (IOException e) {
        received.completeExceptionally(e);
      }
      received.exceptionally(e -> null).get(30, TimeUnit.SECONDS);
      return received;
    }
  }

  @Test
  void crcOfAWholeIsCombinedFromItsParts() {
    byte[] data = new byte[3 * 1024 * 1024 + 77];
    new Random(5).nextBytes(data);
    CRC32C all = new CRC32C();
    all.update(data);
    for (int split : new int[] {0, 1, 4096, TransferProtocol.CHUNK, data.length - 1, data.length}) {
      int a = Crc32c.of(ByteBuffer.wrap(data, 0, split));
      int b = Crc32c.of(ByteBuffer.wrap(data, split, data.length - split));
      assertThat(Crc32c.combine(a, b, data.length - split)).as("split at " + split).isEqualTo((int) all.getValue());
    }
    assertThat(Crc32c.ofZeros(1000)).isEqualTo(Crc32c.of(ByteBuffer.allocate(1000)));
  }

  @Test
  void treeArrivesIdenticalWithCompressionOffAndAuto() throws Exception {
    Path src = tree();
    for (Compression c : Compression.values()) {
      Path dst = tmp.resolve("dst-" + c);
      ImageSender sender = new ImageSender(false, 0, c);
      assertThat(send(sender, src, dst).get()).isEqualTo("m-1");
      assertSameTree(src, dst.resolve("b"));
      if (c == Compression.OFF) {
        assertThat(sender.wireStats().rawChunks()).isEqualTo(6 + 1 + 3);
      } else {
        assertThat(sender.wireStats().zeroChunks()).isEqualTo(2 + 3); // the last 5 bytes of zeros.img are a (short) zero chunk too
      }
    }
  }

  @Test
  void aFlippedByteIsDetectedWithFileAndOffsetAndTheSourceFileStaysIntact() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    byte[] data = new byte[3 * TransferProtocol.CHUNK];
    new Random(9).nextBytes(data);
    Files.write(src.resolve("pages-1.img"), data);
    CompletableFuture<String> r = send(new ImageSender(true, 0, Compression.OFF), src, tmp.resolve("dst"));
    assertThat(r).isCompletedExceptionally();
    assertThatThrownBy(r::get).hasMessageContaining("checksum mismatch in b/pages-1.img at offset 0");
    assertThat(Files.readAllBytes(src.resolve("pages-1.img"))).isEqualTo(data);
  }

  /**
   * A pre-copy round sends the root file system of a pod that keeps running: a file rewritten
   * while it is sent must arrive as the bytes its checksums were made of, not fail the check (it
   * did when bodies went by sendfile, which read the file a second time after the checksum).
   * The final, frozen round sends what the pod left.
   */
  @Test
  void aFileRewrittenWhileItIsSentArrivesWithoutFailingTheCheck() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    Path live = src.resolve("counter");
    int size = 2 * TransferProtocol.CHUNK;
    Files.write(live, new byte[size]);
    java.util.concurrent.atomic.AtomicBoolean writing = new java.util.concurrent.atomic.AtomicBoolean(true);
    CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
      byte[] chunk = new byte[TransferProtocol.CHUNK];
      try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(live,
          java.nio.file.StandardOpenOption.WRITE)) {
        for (int i = 1; writing.get(); i++) {
          java.util.Arrays.fill(chunk, (byte) (i % 251 + 1));
          ch.write(ByteBuffer.wrap(chunk), (long) (i % 2) * TransferProtocol.CHUNK); // one chunk at a time, in place
        }
      } catch (IOException e) {
        throw new RuntimeException(e);
      }
    });
    try {
      for (int round = 0; round < 40; round++) {
        Path dst = tmp.resolve("dst-" + round);
        assertThat(send(new ImageSender(false, 0, Compression.OFF), src, dst).get()).as("round " + round).isEqualTo("m-1");
        assertThat(Files.size(dst.resolve("b/counter"))).isEqualTo(size);
      }
    } finally {
      writing.set(false);
      writer.get(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void aConnectionCutMidFileResumesFromTheLastVerifiedChunk() throws Exception {
    Path dst = tmp.resolve("dst");
    try (LoopbackTarget target = new LoopbackTarget(dst, true)) {
      long total = TreeAssertions.cutMidFileAndResume(tree(), dst, target);
      assertThat(target.perConnection.get(0).bytes() + target.perConnection.get(1).bytes()).isEqualTo(total);
    }
  }

  @Test
  void aSenderGoneSilentTimesOutTheReceiversChannelRead() throws Exception {
    try (ServerSocket server = PeerTls.PLAIN.listen("127.0.0.1", 0, 1);
        Socket c = PeerTls.PLAIN.connect("127.0.0.1:" + server.getLocalPort(), 5000);
        Socket s = server.accept()) {
      c.getOutputStream().write(TransferProtocol.MAGIC.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      c.getOutputStream().flush(); // and then nothing: a cut link
      s.setSoTimeout(500);
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> new ImageReceiver((id, inc) -> tmp.resolve("dst"))
              .receive(s, new byte[0], s, new TransferProgress(), b -> {}))
          .isInstanceOf(SocketTimeoutException.class);
      assertThat((System.nanoTime() - t0) / 1e9).isBetween(0.4, 5.0);
    }
  }
}
