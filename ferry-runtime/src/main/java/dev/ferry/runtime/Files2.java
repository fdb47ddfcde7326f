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

  /** Creates each directory with its parents, or says which could not be. */
  public static void mkdirs(Path... dirs) {
    try {
      for (Path d : dirs) {
        Files.createDirectories(d);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot create " + List.of(dirs), e);
    }
  }

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
    // a process still writing below (a page daemon's warm-up as its lab goes) can add an entry
    // after its directory was emptied: walk again, a few times, before giving up
    for (int attempt = 1; ; attempt++) {
      try {
        deleteWalk(root);
        return;
      } catch (java.nio.file.DirectoryNotEmptyException e) {
        if (attempt == 5) {
          throw new UncheckedIOException("cannot delete " + root + ": something keeps writing into " + e.getFile(), e);
        }
        try {
          Thread.sleep(50L * attempt);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new UncheckedIOException("interrupted while deleting " + root, e);
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot delete " + root, e);
      }
    }
  }

  /** One pass, tolerating entries that others delete meanwhile. */
  private static void deleteWalk(Path root) throws IOException {
    if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(
        root,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
            Files.deleteIfExists(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFileFailed(Path file, IOException exc) throws IOException {
            if (exc instanceof java.nio.file.NoSuchFileException) {
              return FileVisitResult.CONTINUE; // gone meanwhile
            }
            throw exc;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
            if (exc != null && !(exc instanceof java.nio.file.NoSuchFileException)) {
              throw exc;
            }
            Files.deleteIfExists(dir);
            return FileVisitResult.CONTINUE;
          }
        });
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
      for (MountInfo m : MountInfo.read(Path.of("/proc/self/mountinfo"))) {
        String mp = m.mountPoint();
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
