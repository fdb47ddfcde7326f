package dev.ferry.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Trees to send, and what a transfer must deliver: the same tree. */
final class TreeAssertions {
  private TreeAssertions() {}

  /** Creates {@code dir} holding one file {@code name} of {@code mib} MiB that does not compress (1 MiB of random bytes, repeated). */
  static Path incompressibleTree(Path dir, String name, int mib) throws IOException {
    Files.createDirectories(dir);
    byte[] chunk = new byte[1 << 20];
    new java.util.Random(7).nextBytes(chunk);
    try (var out = Files.newOutputStream(dir.resolve(name))) {
      for (int i = 0; i < mib; i++) {
        out.write(chunk);
      }
    }
    return dir;
  }

  /**
   * Adds a 48 MiB file that does not compress to {@code src}, sends the tree to {@code target}
   * (200 MB/s, compression off), cuts the first connection once 20 MiB went and checks that the
   * transfer resumed once, delivered the same tree under {@code dst/b}, and that the second
   * connection carried less than what was left at the cut (it went on from the last verified
   * chunk).
   *
   * @return the bytes the sender counted in all
   */
  static long cutMidFileAndResume(Path src, Path dst, LoopbackTarget target) throws Exception {
    byte[] big = new byte[48 << 20];
    new java.util.Random(3).nextBytes(big);
    Files.write(src.resolve("rootfs/pages-1.img"), big);
    ImageSender sender = new ImageSender(false, 200_000_000, Compression.OFF);
    TransferProgress progress = new TransferProgress();
    java.util.List<java.net.Socket> dialed = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.concurrent.CompletableFuture<Void> cutter = java.util.concurrent.CompletableFuture.runAsync(() -> {
      while (progress.bytes() < (20 << 20)) {
        Thread.onSpinWait();
      }
      PeerTls.abort(dialed.get(0));
    });
    sender.send("m-1", java.util.List.of(new TransferSource(src, "b")), null, () -> {
      java.net.Socket s = target.dial();
      dialed.add(s);
      return s;
    }, 5_000, progress);
    cutter.get(5, java.util.concurrent.TimeUnit.SECONDS);
    assertThat(target.done.get(10, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo("m-1");
    assertThat(sender.resumes()).isEqualTo(1);
    assertSameTree(src, dst.resolve("b"));
    assertThat(target.perConnection.get(1).bytes()).as("bytes sent again after the resume")
        .isLessThan(progress.bytes() - (19 << 20));
    return progress.bytes();
  }

  /** Every file of {@code a} is in {@code b} with the same bytes and mode, every symlink with the same target. */
  static void assertSameTree(Path a, Path b) throws IOException {
    try (Stream<Path> walk = Files.walk(a)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        Path q = b.resolve(a.relativize(p).toString());
        if (Files.isSymbolicLink(p)) {
          assertThat(Files.readSymbolicLink(q)).isEqualTo(Files.readSymbolicLink(p));
        } else if (Files.isRegularFile(p)) {
          assertThat(Files.mismatch(p, q)).as(q.toString()).isEqualTo(-1L);
          assertThat(Files.getPosixFilePermissions(q)).isEqualTo(Files.getPosixFilePermissions(p));
        } else {
          assertThat(q).isDirectory();
        }
      }
    }
  }
}
