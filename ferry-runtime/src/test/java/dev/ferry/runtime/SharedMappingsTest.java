package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Files a process maps shared and writable, read from this very JVM's mappings. */
class SharedMappingsTest {
  @TempDir Path dir;

  @Test
  void aSharedWritableMappingIsFoundAndAReadOnlyOneIsNot() throws Exception {
    Path written = dir.resolve("written.db");
    Path read = dir.resolve("read.db");
    Files.write(written, new byte[8192]);
    Files.write(read, new byte[8192]);
    try (FileChannel w = FileChannel.open(written, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileChannel r = FileChannel.open(read, StandardOpenOption.READ)) {
      var wm = w.map(FileChannel.MapMode.READ_WRITE, 0, 8192); // MAP_SHARED, rw-s
      var rm = r.map(FileChannel.MapMode.READ_ONLY, 0, 8192); // r--s
      wm.put(0, (byte) 1);
      assertThat(rm.get(0)).isZero();
      var keys = SharedMappings.writableFiles(List.of(ProcessHandle.current().pid(), 999_999_999L)); // one long gone
      assertThat(keys).contains(key(written)).doesNotContain(key(read));
    }
  }

  private static Object key(Path p) throws Exception {
    return Files.readAttributes(p, BasicFileAttributes.class).fileKey();
  }
}
