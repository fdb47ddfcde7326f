package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the dump names external and the restore binds: read-only, empty mount points only, as
 * this process's own mounts show them (/proc/self stands in for a container's init).
 */
class MaskedMountsTest {
  @TempDir Path tmp;

  @Test
  void onlyReadOnlyEmptyMountPointsAreNamedAndTheRestoreBindsExactlyThose() throws Exception {
    long self = ProcessHandle.current().pid();
    // /sys is read-only in a container but not here; find what this process has mounted read-only
    List<String> readOnly = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
        .map(l -> l.split(" ")).filter(f -> List.of(f[5].split(",")).contains("ro")).map(f -> f[4]).toList();
    List<String> asked = new java.util.ArrayList<>(List.of("/proc", "/no/such/dir")); // rw (or absent) and not empty
    readOnly.stream().filter(p -> isEmpty(Path.of(p))).findFirst().ifPresent(asked::add);
    Path images = Files.createDirectories(tmp.resolve("images"));
    List<String> conf = MaskedMounts.prepareDump(self, asked, images);
    List<String> named = Files.readAllLines(images.resolve(MaskedMounts.LIST_FILE));
    assertThat(named).doesNotContain("/proc", "/no/such/dir").hasSizeLessThanOrEqualTo(1);
    assertThat(conf)
        .containsExactlyElementsOf(named.stream().map(p -> "external mnt[" + p + "]:" + MaskedMounts.key(p)).toList());

    Files.write(images.resolve(MaskedMounts.LIST_FILE), List.of("/proc/acpi", "/sys/firmware"));
    Path empty = tmp.resolve("empty"); // stands in for the agent's empty tmpfs
    assertThat(MaskedMounts.at(empty).prepareRestore(images)).containsExactly(
        "external mnt[ferry-masked-proc-acpi]:" + empty, "external mnt[ferry-masked-sys-firmware]:" + empty);

    Files.delete(images.resolve(MaskedMounts.LIST_FILE)); // a dump from before: nothing to bind
    assertThat(MaskedMounts.at(empty).prepareRestore(images)).isEmpty();
  }

  private static boolean isEmpty(Path dir) {
    try (var s = Files.list(dir)) {
      return s.findAny().isEmpty();
    } catch (Exception e) {
      return false;
    }
  }

  @Test
  void theEmptyTmpfsIsReadOnlyMountedOnceAndGoesWithItsDirectory() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "mounting needs root");
    Path dir = tmp.resolve("state").resolve("masked");
    try {
      MaskedMounts.mountAt(dir);
      MaskedMounts.mountAt(dir); // an agent started again: found, not mounted twice
      assertThat(Files2.mountsUnder(dir)).containsExactly(dir.toString());
      assertThat(isEmpty(dir)).isTrue();
      assertThat(Exec.run("touch", dir.resolve("x").toString()).ok()).as("written into").isFalse();
    } finally {
      Files2.deleteTree(tmp.resolve("state"));
    }
    assertThat(Files2.mountsUnder(dir)).isEmpty();
  }
}
