package dev.ferry.runtime;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** File-tree helpers that never delete through a mount point. */
public final class Files2 {
  private Files2() {}

  /**
   * Deletes a tree after unmounting anything mounted inside it (deepest first), e.g. CRIU's
   * cgroup yard left behind by a failed restore. Refuses to delete while a mount remains.
   */
  public static void deleteTree(Path root) {
    if (root == null || !Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    unmountUnder(root);
    if (!mountsUnder(root).isEmpty()) {
      throw new IllegalStateException("still mounted under " + root + ": " + mountsUnder(root) + "; not deleting");
    }
    try {
      Files.walkFileTree(
          root,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
              Files.delete(file);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
              Files.delete(dir);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + root, e);
    }
  }

  /** Unmounts every mount point below {@code root}, deepest first. */
  public static void unmountUnder(Path root) {
    List<String> mounts = mountsUnder(root);
    mounts.sort(Comparator.comparingInt(String::length).reversed());
    for (String m : mounts) {
      Exec.run("umount", "-l", m);
    }
  }

  /** Mount points at or below {@code root}, from /proc/self/mountinfo. */
  public static List<String> mountsUnder(Path root) {
    List<String> found = new ArrayList<>();
    String prefix = root.toAbsolutePath().normalize().toString();
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
        String[] f = line.split(" ");
        String mp = f[4].replace("\\040", " ");
        if (mp.equals(prefix) || mp.startsWith(prefix + "/")) {
          found.add(mp);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return found;
  }
}
