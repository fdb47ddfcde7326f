package dev.ferry.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** What a transfer must deliver: the same tree. */
final class TreeAssertions {
  private TreeAssertions() {}

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
