package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One line of a mount table ({@code /proc/PID/mountinfo}): where the mount is, with which
 * options, of which file system.
 *
 * @param root the directory of its file system mounted there ("/" unless a bind of a part)
 * @param options the mount's own options (rw, nosuid, ...)
 * @param propagation the optional fields (shared:N, master:N, ...), empty for a private mount
 * @param source what was mounted ("tmpfs", a device, a server's export)
 * @param superOptions the file system's options (size=..., mode=... for a tmpfs)
 */
record MountInfo(String root, String mountPoint, List<String> options, List<String> propagation, String fsType,
    String source, List<String> superOptions) {
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
      String[] tail = dash < 0 ? new String[0] : line.substring(dash + 3).split(" ");
      String fsType = tail.length > 0 ? tail[0] : "";
      String source = tail.length > 1 ? unescape(tail[1]) : "";
      List<String> superOptions = tail.length > 2 ? List.of(tail[2].split(",")) : List.of();
      List<String> propagation = new ArrayList<>(); // the optional fields, up to the "-"
      for (int i = 6; dash >= 0 && i < f.length && !f[i].equals("-"); i++) {
        propagation.add(f[i]);
      }
      out.add(new MountInfo(unescape(f[3]), unescape(f[4]), List.of(f[5].split(",")), List.copyOf(propagation), fsType,
          source, superOptions));
    }
    return out;
  }

  /** A space in a mount table's path is written {@code \040}. */
  private static String unescape(String path) {
    return path.replace("\\040", " ");
  }
}
