package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;

/**
 * Files that processes have mapped shared and writable ({@code rw-s} in {@code /proc/PID/maps}).
 * A write through such a mapping to a page that is already dirty changes the file without
 * touching its modification or change time (checked on this kernel, tmpfs: only the first write
 * to a clean page stamps it), so a copy that goes by size and times (the frozen round after the
 * presync) would miss it: these files are always copied again.
 */
public final class SharedMappings {
  private SharedMappings() {}

  /**
   * The {@link BasicFileAttributes#fileKey() file keys} (device and inode) of the files the
   * processes {@code pids} (host pids) have mapped shared and writable. A process gone meanwhile
   * is skipped.
   */
  public static Set<Object> writableFiles(Collection<Long> pids) {
    Set<Object> keys = new HashSet<>();
    for (long pid : pids) {
      java.util.List<String> maps;
      try {
        maps = Files.readAllLines(Path.of("/proc", Long.toString(pid), "maps"));
      } catch (IOException e) {
        continue; // exited
      }
      for (String line : maps) {
        // address perms offset dev inode [path]
        String[] f = line.split("\\s+", 6);
        if (f.length < 6 || f[1].length() < 4 || f[1].charAt(1) != 'w' || f[1].charAt(3) != 's' || f[4].equals("0")) {
          continue;
        }
        try {
          // map_files follows to the very file mapped, wherever it sits in the process's mounts
          keys.add(Files.readAttributes(Path.of("/proc", Long.toString(pid), "map_files", f[0]),
              BasicFileAttributes.class).fileKey());
        } catch (IOException | RuntimeException e) {
          // unmapped meanwhile, or a deleted file: nothing left to copy
        }
      }
    }
    return keys;
  }
}
