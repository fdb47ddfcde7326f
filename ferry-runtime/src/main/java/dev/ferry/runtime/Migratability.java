package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Whether CRIU can move a container's processes, checked before anything is frozen: what it
 * cannot carry to another host makes the dump fail after the freeze (or, worse, the restore on
 * the target). Looks at what the processes hold open and lock, from /proc.
 */
public final class Migratability {
  /** The devices runc gives every container: CRIU recreates them on the target. */
  private static final Set<String> DEFAULT_DEVICES = Set.of("/dev/null", "/dev/zero", "/dev/full", "/dev/random",
      "/dev/urandom", "/dev/tty", "/dev/console", "/dev/ptmx");

  private Migratability() {}

  /**
   * What keeps the processes of the container whose init is {@code initPid} from moving, in
   * words naming the process and the thing; empty when nothing does.
   */
  public static List<String> problems(long initPid) throws IOException {
    List<String> out = new ArrayList<>();
    List<Long> pids = ProcessMemory.processesLike(initPid);
    for (long pid : pids) {
      Path fds = Path.of("/proc", Long.toString(pid), "fd");
      try (Stream<Path> s = Files.list(fds)) {
        for (Path fd : (Iterable<Path>) s::iterator) {
          String target;
          try {
            target = Files.readSymbolicLink(fd).toString();
          } catch (IOException e) {
            continue; // closed meanwhile
          }
          if (isExternalDevice(target)) {
            out.add(process(pid) + " has " + target + " open (fd " + fd.getFileName() + "): a device from outside the"
                + " container's defaults, which CRIU cannot move to another host");
          }
        }
      } catch (IOException e) {
        // the process exited meanwhile
      }
    }
    for (String line : Files.readAllLines(Path.of("/proc/locks"))) {
      // "1: FLOCK  ADVISORY  WRITE 1234 00:2b:5678 0 EOF" (blocked waiters carry "->" first)
      String[] f = line.replace("->", "").trim().split("\\s+");
      if (f.length < 6 || !f[4].chars().allMatch(Character::isDigit)) {
        continue;
      }
      long pid = Long.parseLong(f[4]);
      if (pids.contains(pid)) {
        out.add(process(pid) + " holds a " + f[1] + " " + f[3] + " lock (inode " + f[5] + "): Ferry does not move file"
            + " locks yet (a lock on a shared disk would be held on two hosts at once); release it before migrating");
      }
    }
    return out;
  }

  /** Whether an open file is a device CRIU cannot recreate on another host. */
  static boolean isExternalDevice(String target) {
    return target.startsWith("/dev/") && !DEFAULT_DEVICES.contains(target) && !target.startsWith("/dev/pts/")
        && !target.startsWith("/dev/shm/") && !target.startsWith("/dev/mqueue/");
  }

  private static String process(long pid) {
    String comm;
    try {
      comm = Files.readString(Path.of("/proc", Long.toString(pid), "comm")).strip();
    } catch (IOException e) {
      comm = "?";
    }
    return "process " + comm + " (host pid " + pid + ")";
  }
}
