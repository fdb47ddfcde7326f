package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which tmpfs mounts the dump names external, and the restore's copy of them: a fresh tmpfs
 * with the same options and the same entries (modes, owners, device numbers, link targets).
 * This process's own mount table stands in for a container's (/proc/self for its init).
 */
class PodTmpfsTest {
  @TempDir Path tmp;

  @Test
  void theWarmUpLeavesNothingMounted() throws Exception {
    Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "mounting needs root");
    PodTmpfs.warmUp(tmp.resolve("warmup"));
    assertThat(tmp.resolve("warmup")).doesNotExist();
    assertThat(Files2.mountsUnder(tmp)).isEmpty();
  }

  @Test
  void listsDirectoriesLinksDevicesAndEmptyFilesButNotData() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("dev"));
    Files.createDirectory(dir.resolve("pts"));
    Files.createSymbolicLink(dir.resolve("fd"), Path.of("/proc/self/fd"));
    Files.createFile(dir.resolve("empty"));
    List<PodTmpfs.Entry> entries = PodTmpfs.entries(dir);
    assertThat(entries).extracting(PodTmpfs.Entry::path).containsExactlyInAnyOrder("", "pts", "fd", "empty");
    assertThat(entries.get(0).path()).as("the root first").isEmpty();
    assertThat(entries).filteredOn(e -> e.path().equals("fd")).singleElement()
        .satisfies(e -> assertThat(e.type()).isEqualTo('l')).satisfies(e -> assertThat(e.target()).isEqualTo("/proc/self/fd"));

    Files.writeString(dir.resolve("data"), "x");
    assertThat(PodTmpfs.entries(dir)).as("a file with data: left to CRIU").isNull();
    Files.delete(dir.resolve("data"));
    assertThat(Exec.run("mkfifo", dir.resolve("fifo").toString()).ok()).isTrue();
    assertThat(PodTmpfs.entries(dir)).as("a FIFO: left to CRIU").isNull();
    assertThat(PodTmpfs.entries(tmp.resolve("gone"))).isNull();
  }

  @Test
  void theRestoreMountsAFreshTmpfsWithTheSameOptionsAndEntries() throws Exception {
    Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "mounting needs root");
    Path src = Files.createDirectories(tmp.resolve("pod-dev"));
    Path restored = tmp.resolve("pods/redis/tmpfs/redis");
    Path images = Files.createDirectories(tmp.resolve("images"));
    try {
      Exec.checked("mount", "-t", "tmpfs", "-o", "nosuid,noexec,strictatime,mode=755,size=1024k", "ferry-test", src.toString());
      assertThat(Exec.run("mknod", "-m", "666", src.resolve("null").toString(), "c", "1", "3").ok()).isTrue();
      Files.createDirectory(src.resolve("pts"));
      Files.createSymbolicLink(src.resolve("ptmx"), Path.of("pts/ptmx"));
      Files.createFile(src.resolve("owned"));
      Exec.checked("chown", "-h", "1000:1001", src.resolve("owned").toString());
      Exec.checked("chmod", "1777", src.resolve("pts").toString());

      long self = ProcessHandle.current().pid();
      // only this test's mount (the host's own tmpfs mounts are listed too)
      List<PodTmpfs.Mount> mine = PodTmpfs.plan(self).stream().filter(m -> m.path().equals(src.toString())).toList();
      assertThat(PodTmpfs.confirm(self, mine)).as("nothing changed since the plan").isEqualTo(mine);
      assertThat(PodTmpfs.record(mine, images)).containsExactly("external mnt[" + src + "]:" + PodTmpfs.key(src.toString()));
      List<String> binds = PodTmpfs.prepareRestore(images, restored);
      Path copy = restored.resolve(PodTmpfs.key(src.toString()));
      assertThat(binds).containsExactly("external mnt[" + PodTmpfs.key(src.toString()) + "]:" + copy);
      assertThat(PodTmpfs.entries(copy)).containsExactlyInAnyOrderElementsOf(PodTmpfs.entries(src));
      MountInfo made = mount(copy);
      MountInfo original = mount(src);
      assertThat(made.fsType()).isEqualTo("tmpfs");
      assertThat(made.options()).containsExactlyInAnyOrderElementsOf(original.options());
      assertThat(made.superOptions()).containsExactlyInAnyOrderElementsOf(original.superOptions());
      assertThat(Exec.run("sh", "-c", "echo x > " + copy.resolve("null")).ok()).as("the device node works").isTrue();

      // what changes between the plan and the freeze is left to CRIU
      Files.createFile(src.resolve("late"));
      assertThat(PodTmpfs.confirm(self, mine)).isEmpty();
      Files.delete(src.resolve("late"));
      Exec.checked("chmod", "600", src.resolve("null").toString());
      assertThat(PodTmpfs.confirm(self, mine)).isEmpty();

      // a second restore (a rollback's, here again) replaces the copy instead of mounting over it
      Files.createFile(copy.resolve("written-since"));
      PodTmpfs.prepareRestore(images, restored);
      assertThat(Files2.mountsUnder(restored)).containsExactly(copy.toString());
      assertThat(Files.exists(copy.resolve("written-since"))).isFalse();
    } finally {
      Files2.deleteTree(restored.getParent().getParent());
      Exec.run("umount", src.toString());
    }
    assertThat(Files2.mountsUnder(tmp)).isEmpty();
  }

  private static MountInfo mount(Path at) throws Exception {
    return MountInfo.read(Path.of("/proc/self/mountinfo")).stream().filter(m -> m.mountPoint().equals(at.toString()))
        .reduce((a, b) -> b).orElseThrow();
  }
}
