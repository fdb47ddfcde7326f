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
