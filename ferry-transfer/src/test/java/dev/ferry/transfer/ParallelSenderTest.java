package dev.ferry.transfer;

import static dev.ferry.transfer.TreeAssertions.assertSameTree;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Transfers over several connections ({@link ParallelSender}): large files cut into ranges, one
 * per lane, smaller ones shared out whole; every lane checked and resumable on its own.
 */
class ParallelSenderTest {
  @TempDir Path tmp;

  /** Large files (one with zero chunks, one ending in a hole), small ones, an empty one, a symlink, modes. */
  private Path tree() throws IOException {
    Path src = tmp.resolve("src");
    Files.createDirectories(src.resolve("images/sub"));
    byte[] big = new byte[9 * TransferProtocol.CHUNK + 4097];
    new Random(21).nextBytes(big);
    java.util.Arrays.fill(big, 2 * TransferProtocol.CHUNK, 4 * TransferProtocol.CHUNK, (byte) 0);
    java.util.Arrays.fill(big, 6 * TransferProtocol.CHUNK, 7 * TransferProtocol.CHUNK, (byte) 0);
    Files.write(src.resolve("images/pages-1.img"), big);
    byte[] holeEnd = new byte[6 * TransferProtocol.CHUNK + 3];
    new Random(22).nextBytes(holeEnd);
    java.util.Arrays.fill(holeEnd, 4 * TransferProtocol.CHUNK, holeEnd.length, (byte) 0);
    Files.write(src.resolve("images/pages-2.img"), holeEnd);
    Files.setPosixFilePermissions(src.resolve("images/pages-2.img"), PosixFilePermissions.fromString("rw-------"));
    for (int i = 0; i < 7; i++) {
      byte[] small = new byte[1000 * i + 1];
      new Random(i).nextBytes(small);
      Files.write(src.resolve("images/sub/core-" + i + ".img"), small);
    }
    Files.write(src.resolve("images/empty"), new byte[0]);
    Files.createSymbolicLink(src.resolve("images/link"), Path.of("sub/core-1.img"));
    return src;
  }

  @Test
  void lanesCutLargeFilesIntoChunkAlignedRangesThatCoverThemOnce() {
    for (long size : new long[] {Lanes.SPLIT_MIN, 9L * TransferProtocol.CHUNK + 4097, 1L << 30, 5L * TransferProtocol.CHUNK - 1}) {
      for (int n = 2; n <= 5; n++) {
        long next = 0;
        for (int k = 0; k < n; k++) {
          long[] r = new Lanes(k, n).range(size);
          assertThat(r[0]).isEqualTo(next);
          assertThat(r[0] == size || r[0] % TransferProtocol.CHUNK == 0).as("a range starts on a chunk").isTrue();
          next = r[1];
        }
        assertThat(next).as(size + " over " + n).isEqualTo(size);
      }
    }
    assertThat(new Lanes(0, 1).split(1L << 30)).isFalse();
    assertThat(new Lanes(0, 2).split(Lanes.SPLIT_MIN - 1)).isFalse();
  }

  @Test
  void aTreeArrivesIdenticalOverOneToFourLanesWithCompressionOffAndAuto() throws Exception {
    Path src = tree();
    for (int lanes = 1; lanes <= 4; lanes++) {
      for (Compression c : Compression.values()) {
        Path dst = tmp.resolve("dst-" + lanes + "-" + c);
        try (LoopbackTarget t = new LoopbackTarget(dst, true)) {
          ParallelSender sender = new ParallelSender(lanes, false, 0, c, null);
          TransferProgress progress = new TransferProgress();
          sender.send("m-1", List.of(new TransferSource(src, "b")), null, t::dial, 5_000, progress);
          assertSameTree(src, dst.resolve("b"));
          long bytes = Files.size(src.resolve("images/pages-1.img")) + Files.size(src.resolve("images/pages-2.img"))
              + 7 + 1000 * 21;
          assertThat(progress.bytes()).isEqualTo(bytes);
          assertThat(progress.files()).as("a split file counts once").isEqualTo(10);
          for (int k = 0; k < lanes; k++) {
            assertThat(waitFor(t.received, ParallelSender.laneId("m-1", k, lanes))).isTrue();
          }
        }
      }
    }
  }

  private static boolean waitFor(Set<String> set, String id) throws InterruptedException {
    for (int i = 0; i < 100 && !set.contains(id); i++) {
      Thread.sleep(20);
    }
    return set.contains(id);
  }

  @Test
  void anEarlierLongerFileWithOtherBytesIsReplacedWholeHolesIncluded() throws Exception {
    Path src = tree();
    Path dst = tmp.resolve("dst");
    Files.createDirectories(dst.resolve("b/images"));
    byte[] old = new byte[12 * TransferProtocol.CHUNK];
    java.util.Arrays.fill(old, (byte) 0x77); // where the new file has zero chunks, this must not show through
    Files.write(dst.resolve("b/images/pages-1.img"), old);
    Files.write(dst.resolve("b/images/pages-2.img"), old);
    try (LoopbackTarget t = new LoopbackTarget(dst, true)) {
      new ParallelSender(3, false, 0, Compression.AUTO, null)
          .send("m-1", List.of(new TransferSource(src, "b")), null, t::dial, 5_000, new TransferProgress());
    }
    assertSameTree(src, dst.resolve("b"));
  }

  @Test
  void aFlippedByteOnOneLaneIsDetectedWithFileAndOffsetAndFailsTheTransfer() throws Exception {
    Path src = tmp.resolve("src");
    Files.createDirectories(src);
    byte[] data = new byte[8 * TransferProtocol.CHUNK];
    new Random(9).nextBytes(data);
    Files.write(src.resolve("pages-1.img"), data);
    try (LoopbackTarget t = new LoopbackTarget(tmp.resolve("dst"), true)) {
      ParallelSender sender = new ParallelSender(2, true, 0, Compression.OFF, null);
      assertThatThrownBy(() -> sender.send("m-1", List.of(new TransferSource(src, "b")), null, t::dial, 5_000,
              new TransferProgress()))
          .hasMessageContaining("checksum mismatch in b/pages-1.img at offset 0");
      assertThat(t.refusals).anyMatch(m -> m.contains("checksum mismatch in b/pages-1.img at offset 0"));
    }
    assertThat(Files.readAllBytes(src.resolve("pages-1.img"))).isEqualTo(data);
  }

  @Test
  void aLaneWhoseConnectionIsCutResumesFromItsLastVerifiedChunkWhileTheOthersGoOn() throws Exception {
    Path src = tree();
    byte[] big = new byte[48 << 20];
    new Random(3).nextBytes(big);
    Files.write(src.resolve("images/pages-3.img"), big);
    Path dst = tmp.resolve("dst");
    try (LoopbackTarget t = new LoopbackTarget(dst, true)) {
      ParallelSender sender = new ParallelSender(3, false, 300_000_000, Compression.OFF, null);
      TransferProgress progress = new TransferProgress();
      List<Socket> dialed = new CopyOnWriteArrayList<>();
      CompletableFuture<Void> cutter = CompletableFuture.runAsync(() -> {
        while (progress.bytes() < (30 << 20)) {
          Thread.onSpinWait();
        }
        PeerTls.abort(dialed.get(1));
      });
      sender.send("m-1", List.of(new TransferSource(src, "b")), null, () -> {
        Socket s = t.dial();
        dialed.add(s);
        return s;
      }, 5_000, progress);
      cutter.get(5, TimeUnit.SECONDS);
      assertThat(sender.resumes()).isEqualTo(1);
      assertThat(dialed).hasSize(4);
      assertSameTree(src, dst.resolve("b"));
      long total = progress.bytes();
      long sum = t.perConnection.stream().mapToLong(TransferProgress::bytes).sum();
      assertThat(sum).as("each verified chunk is received once, before or after the resume").isEqualTo(total);
    }
  }

  @Test
  void aLaneThatCannotResumeFailsTheWholeTransfer() throws Exception {
    Path src = tree();
    byte[] big = new byte[32 << 20];
    new Random(4).nextBytes(big);
    Files.write(src.resolve("images/pages-3.img"), big);
    try (LoopbackTarget t = new LoopbackTarget(tmp.resolve("dst"), true)) {
      ParallelSender sender = new ParallelSender(2, false, 100_000_000, Compression.OFF, null);
      TransferProgress progress = new TransferProgress();
      List<Socket> dialed = new CopyOnWriteArrayList<>();
      boolean[] down = {false};
      CompletableFuture<Void> cutter = CompletableFuture.runAsync(() -> {
        while (progress.bytes() < (8 << 20)) {
          Thread.onSpinWait();
        }
        down[0] = true; // the link goes and stays down
        dialed.forEach(PeerTls::abort);
      });
      long t0 = System.nanoTime();
      assertThatThrownBy(() -> sender.send("m-1", List.of(new TransferSource(src, "b")), null, () -> {
        if (down[0]) {
          throw new java.net.ConnectException("link down");
        }
        Socket s = t.dial();
        dialed.add(s);
        return s;
      }, 1_000, progress)).isInstanceOf(IOException.class).hasMessageContaining("not resumed within 1000 ms");
      cutter.get(5, TimeUnit.SECONDS);
      assertThat((System.nanoTime() - t0) / 1e9).isLessThan(10);
    }
  }

  @Test
  void aCapOf100MBpsHoldsForAllLanesTogetherWithinTenPercent() throws Exception {
    Path src = TreeAssertions.incompressibleTree(tmp.resolve("big"), "pages.img", 100);
    try (LoopbackTarget t = new LoopbackTarget(tmp.resolve("dst"), true)) {
      TransferProgress progress = new TransferProgress();
      long t0 = System.nanoTime();
      new ParallelSender(3, false, 100_000_000, Compression.OFF, null)
          .send("m-1", List.of(new TransferSource(src, "b")), null, t::dial, 5_000, progress);
      double mbps = progress.bytes() / ((System.nanoTime() - t0) / 1e9) / 1e6;
      assertThat(mbps).as("MB/s of 3 lanes under a 100 MB/s cap").isBetween(90.0, 110.0);
    }
  }
}
