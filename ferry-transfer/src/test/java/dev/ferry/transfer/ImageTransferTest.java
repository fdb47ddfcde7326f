package dev.ferry.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageTransferTest {
  @TempDir Path tmp;

  private Path sampleTree() throws IOException {
    Path src = tmp.resolve("src");
    Files.createDirectories(src.resolve("rootfs/bin"));
    byte[] big = new byte[3 * 1024 * 1024 + 17]; // several chunks and a partial one
    new Random(42).nextBytes(big);
    Files.write(src.resolve("rootfs/bin/app"), big);
    Files.setPosixFilePermissions(src.resolve("rootfs/bin/app"), PosixFilePermissions.fromString("rwxr-x---"));
    Files.writeString(src.resolve("config.json"), "{}");
    Files.write(src.resolve("empty"), new byte[0]);
    Files.createSymbolicLink(src.resolve("rootfs/bin/sh"), Path.of("app"));
    return src;
  }

  /** What one transfer over a real loopback connection did. */
  private record Outcome(CompletableFuture<String> received, Map<String, ImageSender.FileStamp> sent, double senderSeconds) {}

  /**
   * Sends {@code src} as "bundles/app" (or as {@code as}) to a receiver landing in {@code dst},
   * over a real loopback TCP connection. A send that fails completes {@code received}
   * exceptionally with the sender's error.
   */
  private Outcome loopback(ImageSender sender, Path src, String as, Path dst, Map<String, ImageSender.FileStamp> baseline,
      TransferProgress progress) throws Exception {
    return loopback(sender, new TransferSource(src, as), dst, baseline, progress);
  }

  private Outcome loopback(ImageSender sender, TransferSource source, Path dst,
      Map<String, ImageSender.FileStamp> baseline, TransferProgress progress) throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
        try (Socket s = server.accept()) {
          return new ImageReceiver((id, inc) -> dst).receive(s.getInputStream(), s.getOutputStream(), new TransferProgress(), b -> {});
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      Map<String, ImageSender.FileStamp> sent = null;
      long t0 = System.nanoTime();
      try (Socket c = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
        sent = sender.send("m-1", List.of(source), baseline, c.getOutputStream(), c.getInputStream(), progress);
      } catch (IOException e) {
        received.completeExceptionally(e);
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      received.exceptionally(e -> null).get(30, TimeUnit.SECONDS);
      return new Outcome(received, sent, seconds);
    }
  }

  private CompletableFuture<String> transfer(Path src, Path dst, boolean corrupt) throws Exception {
    return loopback(new ImageSender(corrupt), src, "bundles/app", dst, null, new TransferProgress()).received();
  }

  private Map<String, ImageSender.FileStamp> roundTrip(Path src, Path dst, Map<String, ImageSender.FileStamp> baseline,
      TransferProgress progress) throws Exception {
    Outcome o = loopback(new ImageSender(false), src, "bundles/app", dst, baseline, progress);
    o.received().get();
    return o.sent();
  }

  @Test
  void treeArrivesIdenticalWithModesAndSymlinks() throws Exception {
    Path src = sampleTree();
    Path dst = tmp.resolve("dst");
    assertThat(transfer(src, dst, false).get()).isEqualTo("m-1");
    Path app = dst.resolve("bundles/app/rootfs/bin/app");
    assertThat(Files.readAllBytes(app)).isEqualTo(Files.readAllBytes(src.resolve("rootfs/bin/app")));
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(app))).isEqualTo("rwxr-x---");
    assertThat(Files.readSymbolicLink(dst.resolve("bundles/app/rootfs/bin/sh"))).isEqualTo(Path.of("app"));
    assertThat(Files.size(dst.resolve("bundles/app/empty"))).isZero();
  }

  @Test
  void aSecondRoundSendsOnlyWhatChangedAndDeletesWhatIsGone() throws Exception {
    Path src = sampleTree();
    Path dst = tmp.resolve("dst");
    var baseline = roundTrip(src, dst, null, new TransferProgress());
    Files.writeString(src.resolve("config.json"), "{\"changed\":true}");
    Files.delete(src.resolve("empty"));
    Files.writeString(src.resolve("rootfs/new"), "new file");
    TransferProgress second = new TransferProgress();
    roundTrip(src, dst, baseline, second);
    assertThat(second.files()).isEqualTo(2); // config.json and rootfs/new; not the 3 MiB binary
    assertThat(Files.readString(dst.resolve("bundles/app/config.json"))).contains("changed");
    assertThat(Files.readString(dst.resolve("bundles/app/rootfs/new"))).isEqualTo("new file");
    assertThat(dst.resolve("bundles/app/empty")).doesNotExist();
    assertThat(Files.readAllBytes(dst.resolve("bundles/app/rootfs/bin/app")))
        .isEqualTo(Files.readAllBytes(src.resolve("rootfs/bin/app")));
  }

  /**
   * A write through a shared mapping to a page already dirty leaves the file's times alone: the
   * second round finds it unchanged by its stamp, and only a source that names it (a file the
   * pod had mapped shared and writable) sends it again.
   */
  @Test
  void aFileWrittenThroughASharedMappingAfterTheFirstRoundArrivesWhenNamed() throws Exception {
    Path src = Files.createDirectories(tmp.resolve("src"));
    Path db = src.resolve("data.db");
    Files.write(db, new byte[8192]);
    Path dst = tmp.resolve("dst");
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(db, java.nio.file.StandardOpenOption.READ,
        java.nio.file.StandardOpenOption.WRITE)) {
      java.nio.MappedByteBuffer map = ch.map(java.nio.channels.FileChannel.MapMode.READ_WRITE, 0, 8192); // MAP_SHARED
      map.put(0, "v1".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      Thread.sleep(20);
      var baseline = roundTrip(src, dst, null, new TransferProgress());
      Object stampBefore = Files.readAttributes(db, "unix:lastModifiedTime,ctime,size");
      Thread.sleep(20);
      map.put(0, "v2".getBytes(java.nio.charset.StandardCharsets.US_ASCII)); // same page, already dirty
      org.junit.jupiter.api.Assumptions.assumeTrue(
          stampBefore.equals(Files.readAttributes(db, "unix:lastModifiedTime,ctime,size")),
          "this file system stamped a write to a dirty shared page: nothing to miss here");

      TransferProgress byTimes = new TransferProgress();
      roundTrip(src, dst, baseline, byTimes);
      assertThat(byTimes.files()).as("by size and times the file looks unchanged").isZero();
      assertThat(Files.readString(dst.resolve("bundles/app/data.db")).substring(0, 2)).isEqualTo("v1");

      Object key = Files.readAttributes(db, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
      TransferProgress named = new TransferProgress();
      Outcome o = loopback(new ImageSender(false), new TransferSource(src, "bundles/app", java.util.Set.of(),
          java.util.Set.of(key)), dst, baseline, named);
      o.received().get();
      assertThat(named.files()).isEqualTo(1);
      assertThat(Files.readString(dst.resolve("bundles/app/data.db")).substring(0, 2)).isEqualTo("v2");
    }
  }

  @Test
  void aBandwidthCapOf100MBpsIsHeldWithinTenPercent() throws Exception {
    Path src = TreeAssertions.incompressibleTree(tmp.resolve("big"), "pages.img", 100);
    TransferProgress p = new TransferProgress();
    Outcome o = loopback(new ImageSender(false, 100_000_000), src, "images", tmp.resolve("dst"), null, p);
    o.received().get();
    double mbps = p.bytes() / o.senderSeconds() / 1e6;
    assertThat(mbps).as("MB/s under a 100 MB/s cap").isBetween(90.0, 110.0);
  }

  /** 8 MiB like a memory image: zero pages, text-like pages that compress, then random ones. */
  private Path memoryLikeTree() throws IOException {
    Path src = tmp.resolve("mem");
    Files.createDirectories(src);
    byte[] data = new byte[8 << 20];
    byte[] text = "key:000123 value:hello-world-hello-ferry ".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    for (int i = 3 << 20; i < 6 << 20; i++) {
      data[i] = text[i % text.length];
    }
    byte[] noise = new byte[2 << 20];
    new Random(5).nextBytes(noise);
    System.arraycopy(noise, 0, data, 6 << 20, noise.length);
    Files.write(src.resolve("pages-1.img"), data);
    return src;
  }

  @Test
  void zeroChunksBecomeHolesAndCompressibleOnesShrinkYetEverythingArrivesIdentical() throws Exception {
    Path src = memoryLikeTree();
    ImageSender sender = new ImageSender(false, 0, Compression.AUTO);
    loopback(sender, src, "images", tmp.resolve("dst"), null, new TransferProgress()).received().get();
    Path got = tmp.resolve("dst/images/pages-1.img");
    assertThat(Files.mismatch(src.resolve("pages-1.img"), got)).isEqualTo(-1L);
    ImageSender.WireStats w = sender.wireStats();
    assertThat(w.zeroChunks()).isEqualTo(3);
    assertThat(w.compressedChunks()).isEqualTo(3);
    assertThat(w.rawChunks()).isEqualTo(2);
    assertThat(w.wireBytes()).as("bytes on the wire for 8 MiB").isLessThan(2 * (1 << 20) + (1 << 20) / 4);
    // the zero MiBs take no space on the target
    long blocks = Long.parseLong(new String(new ProcessBuilder("stat", "-c", "%b", got.toString()).start()
        .getInputStream().readAllBytes()).strip());
    assertThat(blocks * 512).isLessThan(6L << 20);
  }

  @Test
  void withCompressionOffEveryChunkTravelsAsItIs() throws Exception {
    Path src = memoryLikeTree();
    ImageSender sender = new ImageSender(false, 0, Compression.OFF);
    loopback(sender, src, "images", tmp.resolve("dst"), null, new TransferProgress()).received().get();
    assertThat(Files.mismatch(src.resolve("pages-1.img"), tmp.resolve("dst/images/pages-1.img"))).isEqualTo(-1L);
    assertThat(sender.wireStats().rawChunks()).isEqualTo(8);
  }

  @Test
  void incompressibleDataIsTriedOnlyNowAndThen() throws Exception {
    Path src = tmp.resolve("noise");
    Files.createDirectories(src);
    byte[] noise = new byte[64 << 20];
    new Random(9).nextBytes(noise);
    Files.write(src.resolve("pages-1.img"), noise);
    ImageSender sender = new ImageSender(false, 0, Compression.AUTO);
    loopback(sender, src, "images", tmp.resolve("dst"), null, new TransferProgress()).received().get();
    assertThat(sender.wireStats().rawChunks()).isEqualTo(64);
    assertThat(sender.wireStats().wireBytes()).isEqualTo((64L << 20) + 64); // one codec byte per chunk
  }

  @Test
  void aFlippedByteInACompressedChunkIsDetected() throws Exception {
    Path src = memoryLikeTree();
    CompletableFuture<String> r = loopback(new ImageSender(true, 0, Compression.AUTO), src, "images", tmp.resolve("dst"),
        null, new TransferProgress()).received();
    assertThat(r).isCompletedExceptionally();
    assertThatThrownBy(r::get).hasMessageContaining("checksum mismatch in images/pages-1.img");
  }

  @Test
  void flippedByteIsDetectedWithFileAndOffset() throws Exception {
    Path src = sampleTree();
    CompletableFuture<String> r = transfer(src, tmp.resolve("dst"), true);
    assertThat(r).isCompletedExceptionally();
    assertThatThrownBy(r::get).hasMessageContaining("checksum mismatch in bundles/app/").hasMessageContaining("at offset 0");
  }

  @Test
  void pathsOutsideTheTransferDirectoryAreRefused() throws Exception {
    ByteArrayOutputStream wire = new ByteArrayOutputStream();
    var out = new java.io.DataOutputStream(wire);
    out.writeBytes(TransferProtocol.MAGIC);
    out.writeUTF("m-1");
    out.writeByte(TransferProtocol.FRESH);
    out.writeByte(TransferProtocol.DIR);
    out.writeUTF("../../etc/evil");
    out.writeInt(0755);
    ByteArrayOutputStream answer = new ByteArrayOutputStream();
    assertThatThrownBy(() -> new ImageReceiver((id, inc) -> tmp.resolve("dst"))
            .receive(new java.io.ByteArrayInputStream(wire.toByteArray()), answer, new TransferProgress(), b -> {}))
        .hasMessageContaining("refusing path outside");
    assertThat(new String(answer.toByteArray(), StandardCharsets.UTF_8)).contains("refusing path outside");
    assertThat(tmp.resolve("etc")).doesNotExist();
  }

  @Test
  void transferNobodyExpectsIsRefused() throws Exception {
    Path src = sampleTree();
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      CompletableFuture<Void> rx = CompletableFuture.runAsync(() -> {
        try (Socket s = server.accept()) {
          new ImageReceiver((id, inc) -> {
            throw new IllegalStateException("no placeholder waits for migration " + id);
          }).receive(s.getInputStream(), s.getOutputStream(), new TransferProgress(), b -> {});
        } catch (Exception e) {
          // expected
        }
      });
      try (Socket c = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
        assertThatThrownBy(() -> new ImageSender(false).send("m-x", List.of(new TransferSource(src, "b")),
                c.getOutputStream(), c.getInputStream(), new TransferProgress()))
            .isInstanceOf(IOException.class);
      }
      rx.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void aConnectionCutMidFileResumesFromTheLastVerifiedChunk() throws Exception {
    Path src = sampleTree();
    byte[] big = new byte[48 << 20];
    new Random(3).nextBytes(big);
    Files.write(src.resolve("rootfs/pages-1.img"), big);
    Path dst = tmp.resolve("dst");
    try (LoopbackTarget rx = new LoopbackTarget(dst, false)) {
      ImageSender sender = new ImageSender(false, 200_000_000); // ~0.25 s: time to cut it half-way
      TransferProgress progress = new TransferProgress();
      List<Socket> dialed = new java.util.concurrent.CopyOnWriteArrayList<>();
      CompletableFuture<Void> cutter = CompletableFuture.runAsync(() -> {
        while (progress.bytes() < (20 << 20)) {
          Thread.onSpinWait();
        }
        PeerTls.abort(dialed.get(0)); // a reset mid-file, as a cut link ends once the watchdog gives up
      });
      sender.send("m-1", List.of(new TransferSource(src, "bundles/app")), null, () -> {
        Socket s = rx.dial();
        dialed.add(s);
        return s;
      }, 5_000, progress);
      cutter.get(5, TimeUnit.SECONDS);
      assertThat(rx.done.get(10, TimeUnit.SECONDS)).isEqualTo("m-1");
      assertThat(sender.resumes()).isEqualTo(1);
      assertThat(dialed).hasSize(2);
      assertThat(Files.mismatch(src.resolve("rootfs/pages-1.img"), dst.resolve("bundles/app/rootfs/pages-1.img")))
          .isEqualTo(-1L);
      assertThat(Files.readAllBytes(dst.resolve("bundles/app/rootfs/bin/app")))
          .isEqualTo(Files.readAllBytes(src.resolve("rootfs/bin/app")));
      long total = (48 << 20) + Files.size(src.resolve("rootfs/bin/app")) + 2;
      assertThat(progress.bytes()).isEqualTo(total);
      long afterResume = rx.perConnection.get(1).bytes();
      // cut after 20 MiB had left the sender; socket buffers (up to ~10 MiB on loopback) and the
      // receiver's writer (a few chunks) were still in flight then, so at least ~4 MiB were verified
      assertThat(afterResume).as("bytes sent again after the resume").isLessThan(total - (4 << 20)).isPositive();
      assertThat(rx.perConnection.get(0).bytes() + afterResume).isEqualTo(total);
    }
  }

  @Test
  void aCutThatOutlastsTheResumeWindowFailsNamingTheBreakAndTheLastAttempt() throws Exception {
    Path src = sampleTree();
    try (LoopbackTarget rx = new LoopbackTarget(tmp.resolve("dst"), false)) {
      ImageSender sender = new ImageSender(false, 2_000_000);
      TransferProgress progress = new TransferProgress();
      int[] dials = {0};
      CompletableFuture<Void> cutter = new CompletableFuture<>();
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> sender.send("m-1", List.of(new TransferSource(src, "b")), null, () -> {
        if (dials[0]++ > 0) {
          throw new java.net.ConnectException("Connection refused (the link is still down)");
        }
        Socket s = rx.dial();
        cutter.completeAsync(() -> {
          while (progress.bytes() == 0) {
            Thread.onSpinWait();
          }
          PeerTls.abort(s);
          return null;
        });
        return s;
      }, 600, progress))
          .hasMessageContaining("not resumed within 600 ms")
          .hasMessageContaining("the link is still down");
      assertThat((System.nanoTime() - t0) / 1e9).isLessThan(5);
      assertThat(dials[0]).isGreaterThan(2);
    }
  }

  @Test
  void aTransferBrokenBeforeTheReceiverHeardOfItStartsOver() throws Exception {
    Path src = sampleTree();
    try (LoopbackTarget rx = new LoopbackTarget(tmp.resolve("dst"), false)) {
      ImageSender sender = new ImageSender(false);
      int[] dials = {0};
      TransferProgress progress = new TransferProgress();
      sender.send("m-1", List.of(new TransferSource(src, "b")), null, () -> {
        if (dials[0]++ == 0) {
          Socket s = rx.dial();
          s.close(); // broken before the receiver heard of the transfer
          return s;
        }
        return rx.dial();
      }, 2_000, progress);
      assertThat(rx.done.get(10, TimeUnit.SECONDS)).isEqualTo("m-1");
      assertThat(dials[0]).as("the broken one, the refused resume, the fresh start").isEqualTo(3);
      assertThat(Files.readAllBytes(tmp.resolve("dst/b/rootfs/bin/app"))).isEqualTo(Files.readAllBytes(src.resolve("rootfs/bin/app")));
      assertThat(progress.bytes()).isEqualTo(Files.size(src.resolve("rootfs/bin/app")) + 2);
    }
  }

  @Test
  void aHostCapOf100MBpsHoldsTwoConcurrentTransfersTogetherWithinTenPercent() throws Exception {
    Path src = tmp.resolve("big");
    Files.createDirectories(src);
    byte[] chunk = new byte[1 << 20];
    new Random(8).nextBytes(chunk);
    try (var out = Files.newOutputStream(src.resolve("pages.img"))) {
      for (int i = 0; i < 60; i++) {
        out.write(chunk);
      }
    }
    RateLimiter host = new RateLimiter(100_000_000);
    TransferProgress a = new TransferProgress();
    TransferProgress b = new TransferProgress();
    long t0 = System.nanoTime();
    // each transfer alone could go at 80 MB/s; together they must share the host's 100
    CompletableFuture<Outcome> first = CompletableFuture.supplyAsync(() -> loopbackUnchecked(
        new ImageSender(false, 80_000_000, Compression.AUTO, host), src, tmp.resolve("dst-a"), a));
    CompletableFuture<Outcome> second = CompletableFuture.supplyAsync(() -> loopbackUnchecked(
        new ImageSender(false, 80_000_000, Compression.AUTO, host), src, tmp.resolve("dst-b"), b));
    first.get(60, TimeUnit.SECONDS).received().get();
    second.get(60, TimeUnit.SECONDS).received().get();
    double seconds = (System.nanoTime() - t0) / 1e9;
    double mbps = (a.bytes() + b.bytes()) / seconds / 1e6;
    assertThat(mbps).as("MB/s of both transfers together under a 100 MB/s host cap").isBetween(90.0, 110.0);
  }

  private Outcome loopbackUnchecked(ImageSender sender, Path src, Path dst, TransferProgress p) {
    try {
      return loopback(sender, src, "images", dst, null, p);
    } catch (Exception e) {
      throw new RuntimeException(e);
    }
  }
}
