package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One line of a mount table ({@code /proc/PID/mountinfo}): where the mount is, with which
 * options, of which file system.
 */
record MountInfo(String mountPoint, List<String> options, String fsType) {
  /** The mount table at {@code file}, e.g. /proc/self/mountinfo. */
  static List<MountInfo> read(Path file) throws IOException {
    return parse(Files.readAllLines(file));
  }

  /**
   * Lines of the form {@code id parent major:minor root mount-point options [optional...] -
   * fstype source super-options}; a space in a mount point is written {@code \040}.
   */
  static List<MountInfo> parse(List<String> lines) {
    List<MountInfo> out = new ArrayList<>();
    for (String line : lines) {
      String[] f = line.split(" ");
      if (f.length < 6) {
        continue;
      }
      int dash = line.indexOf(" - ");
      String fsType = dash < 0 ? "" : line.substring(dash + 3).split(" ")[0];
      out.add(new MountInfo(f[4].replace("\\040", " "), List.of(f[5].split(",")), fsType));
    }
    return out;
  }
}
