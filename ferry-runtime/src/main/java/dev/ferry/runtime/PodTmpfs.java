package dev.ferry.runtime;

import com.fasterxml.jackson.core.type.TypeReference;
import com.sun.jna.Native;
import dev.ferry.api.Json;
import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Keeps a container's own tmpfs mounts out of CRIU's archives when what they hold can be made
 * again exactly: an empty one ({@code /dev/shm} as runc makes it) or one holding only
 * directories, symbolic links, device nodes and empty files ({@code /dev} as runc makes it).
 * CRIU archives every tmpfs of a container with a {@code tar} and a {@code gzip} process at the
 * dump and extracts it with two more at the restore: ~4 ms a mount on each side on this kind of
 * machine, inside the frozen window. {@link MaskedMounts} does the same for runc's empty
 * read-only masks.
 *
 * <p>At the dump, once the container is frozen (nothing in it writes any more), each such
 * mount is named external in CRIU's configuration and its options and entries are written to
 * the images ({@value #FILE}). Before the restore, a fresh tmpfs with those options is mounted
 * for the container on the restoring host, with the same entries made in it (modes, owners,
 * device numbers, link targets), and CRIU binds it where the dump found the original. A bind
 * keeps the flags of the mount it binds (nosuid, nodev, ...), and so does the restored
 * container's mount; the next dump finds a tmpfs there again. The mounts are made through the C
 * library in-process (microseconds, not a {@code mount} process), under a directory of the pod
 * that is unmounted and removed with it ({@link Files2#deleteTree}).
 *
 * <p>A tmpfs holding a regular file with data, a socket or a FIFO, or shared with other mounts
 * (propagation), or read-only, is left to CRIU as before.
 */
public final class PodTmpfs {
  /** What the dump made external, in the image directory. */
  static final String FILE = "ferry-tmpfs.json";
  private static final String KEY_PREFIX = "ferry-tmpfs";
  /** A tmpfs with more entries than this is left to CRIU (runc's /dev holds about 15). */
  private static final int MAX_ENTRIES = 256;

  private static final int S_IFMT = 0170000;
  private static final int S_IFDIR = 0040000;
  private static final int S_IFREG = 0100000;
  private static final int S_IFLNK = 0120000;
  private static final int S_IFCHR = 0020000;
  private static final int S_IFBLK = 0060000;
  private static final int MNT_DETACH = 2;

  private static final Map<String, Long> MOUNT_FLAGS = Map.of("ro", 1L, "nosuid", 2L, "nodev", 4L, "noexec", 8L,
      "sync", 16L, "dirsync", 128L, "noatime", 1024L, "nodiratime", 2048L, "relatime", 1L << 21);
  private static final long MS_STRICTATIME = 1L << 24;

  private PodTmpfs() {}

  /**
   * One entry of a tmpfs, relative to its root ("" for the root itself).
   *
   * @param type 'd', 'f' (empty), 'l', 'c' or 'b'
   * @param mode the permission bits with setuid, setgid and sticky
   * @param rdev a device node's device number
   * @param target a symbolic link's target
   */
  record Entry(String path, char type, int mode, int uid, int gid, long rdev, String target) {}

  /**
   * A tmpfs the dump named external.
   *
   * @param path where it is mounted in the container
   * @param key its name in the images
   * @param source the mount's source ("tmpfs", "shm")
   * @param options the mount's own options (nosuid, nodev, ...)
   * @param data the file system's options (size=..., mode=...)
   */
  record Mount(String path, String key, String source, List<String> options, String data, List<Entry> entries) {}

  /** The key a tmpfs mounted at {@code path} has in the images. */
  static String key(String path) {
    return KEY_PREFIX + path.replace('/', '-');
  }

  /**
   * Before the freeze of the container of process {@code pid}: its tmpfs mounts that could be
   * made again from a list, with their entries. {@link #confirm} checks them once it is frozen.
   */
  static List<Mount> plan(long pid) throws IOException {
    List<Mount> out = new ArrayList<>();
    for (MountInfo m : MountInfo.read(Path.of("/proc/" + pid + "/mountinfo"))) {
      if (!m.fsType().equals("tmpfs") || m.mountPoint().equals("/") || !m.root().equals("/")
          || !m.options().contains("rw") || !m.propagation().isEmpty()) {
        continue;
      }
      List<Entry> entries = entries(Path.of("/proc/" + pid + "/root" + m.mountPoint()));
      if (entries == null) {
        continue;
      }
      List<String> options = m.options().stream().filter(o -> !o.equals("rw")).toList();
      String data = String.join(",", m.superOptions().stream().filter(o -> !o.equals("rw") && !o.equals("ro")).toList());
      String source = m.source().isEmpty() ? "tmpfs" : m.source();
      out.add(new Mount(m.mountPoint(), key(m.mountPoint()), source, options, data, entries));
    }
    return out;
  }

  /**
   * With the container of process {@code pid} frozen (nothing in it can change a mount any
   * more): those of {@code planned} that still hold exactly what they held; the others are
   * left to CRIU's archives. A few stat calls per mount, no more.
   */
  static List<Mount> confirm(long pid, List<Mount> planned) {
    List<Mount> out = new ArrayList<>();
    for (Mount m : planned) {
      List<Entry> now = entries(Path.of("/proc/" + pid + "/root" + m.path()));
      if (now != null && now.equals(m.entries())) {
        out.add(m);
      }
    }
    return out;
  }

  /**
   * Records {@code mounts} in {@code imageDir} (for the restore) and returns the lines that name
   * them external in CRIU's configuration file; with none, removes the record.
   */
  static List<String> record(List<Mount> mounts, Path imageDir) throws IOException {
    Path file = imageDir.resolve(FILE);
    if (mounts.isEmpty()) {
      Files.deleteIfExists(file);
      return List.of();
    }
    Json.writeFile(file, mounts);
    return mounts.stream().map(m -> "external mnt[" + m.path() + "]:" + m.key()).toList();
  }

  /**
   * What the tmpfs at {@code root} holds, parents before children; null if it cannot be made
   * again from a list (data in a file, a socket, a FIFO, too many entries) or is gone. A mount
   * on a directory of it is another mount's business: the directory is listed, not its content.
   */
  static List<Entry> entries(Path root) {
    List<Entry> out = new ArrayList<>();
    try {
      long rootDev = ((Number) Files.getAttribute(root, "unix:dev", LinkOption.NOFOLLOW_LINKS)).longValue();
      boolean[] refused = {false};
      Files.walkFileTree(root, new SimpleFileVisitor<>() {
        @Override
        public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
          Map<String, Object> a = Files.readAttributes(dir, "unix:mode,uid,gid,dev", LinkOption.NOFOLLOW_LINKS);
          out.add(new Entry(relative(root, dir), 'd', (Integer) a.get("mode") & 07777, (Integer) a.get("uid"),
              (Integer) a.get("gid"), 0, null));
          boolean mountPoint = ((Number) a.get("dev")).longValue() != rootDev;
          return mountPoint ? FileVisitResult.SKIP_SUBTREE : tooMany();
        }

        @Override
        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
          Map<String, Object> a = Files.readAttributes(file, "unix:mode,uid,gid,rdev,size", LinkOption.NOFOLLOW_LINKS);
          int mode = (Integer) a.get("mode");
          char type = switch (mode & S_IFMT) {
            case S_IFREG -> ((Number) a.get("size")).longValue() == 0 ? 'f' : '?';
            case S_IFLNK -> 'l';
            case S_IFCHR -> 'c';
            case S_IFBLK -> 'b';
            default -> '?';
          };
          if (type == '?') {
            refused[0] = true;
            return FileVisitResult.TERMINATE;
          }
          out.add(new Entry(relative(root, file), type, mode & 07777, (Integer) a.get("uid"), (Integer) a.get("gid"),
              type == 'c' || type == 'b' ? ((Number) a.get("rdev")).longValue() : 0,
              type == 'l' ? Files.readSymbolicLink(file).toString() : null));
          return tooMany();
        }

        private FileVisitResult tooMany() {
          if (out.size() > MAX_ENTRIES) {
            refused[0] = true;
            return FileVisitResult.TERMINATE;
          }
          return FileVisitResult.CONTINUE;
        }
      });
      return refused[0] ? null : out;
    } catch (IOException | RuntimeException e) {
      return null; // gone, or unreadable: CRIU archives it and says what is wrong
    }
  }

  private static String relative(Path root, Path p) {
    return root.relativize(p).toString();
  }

  /**
   * Before a restore from {@code imageDir}: mounts a fresh tmpfs under {@code dir} for each
   * tmpfs its dump named external, makes its entries, and returns the lines that bind them in
   * CRIU's configuration file. Nothing to do (no lines) for images without {@value #FILE}.
   */
  static List<String> prepareRestore(Path imageDir, Path dir) throws IOException {
    Path file = imageDir.resolve(FILE);
    if (!Files.exists(file)) {
      return List.of();
    }
    List<String> mounted = Files2.mountsUnder(dir); // once: each mount below reads the whole table otherwise
    List<String> conf = new ArrayList<>();
    for (Mount m : read(imageDir)) {
      Path at = dir.resolve(m.key()).toAbsolutePath().normalize();
      mountFresh(m, at, mounted.contains(at.toString()));
      for (Entry e : m.entries()) {
        make(at, e);
      }
      conf.add("external mnt[" + m.key() + "]:" + at);
    }
    return conf;
  }

  /** What the dump recorded in {@code imageDir}. */
  private static List<Mount> read(Path imageDir) throws IOException {
    return Json.MAPPER.readValue(imageDir.resolve(FILE).toFile(), new TypeReference<List<Mount>>() {});
  }

  /**
   * Mounts an empty tmpfs with the options of {@code m} at {@code at}, replacing one left there
   * before ({@code mountedBefore}).
   */
  private static void mountFresh(Mount m, Path at, boolean mountedBefore) throws IOException {
    Files.createDirectories(at);
    if (mountedBefore) {
      // an earlier restore's, no longer used: the copy restored with it is gone (or this is its rollback)
      LibC.INSTANCE.umount2(at.toString(), MNT_DETACH);
    }
    long flags = 0;
    for (String o : m.options()) {
      flags |= MOUNT_FLAGS.getOrDefault(o, 0L);
    }
    if (!m.options().contains("relatime") && !m.options().contains("noatime")) {
      flags |= MS_STRICTATIME; // the mount table names no atime option for it
    }
    if (LibC.INSTANCE.mount(m.source(), at.toString(), "tmpfs", flags, m.data()) != 0) {
      throw new IOException("cannot mount a tmpfs (" + m.data() + ") at " + at + " for " + m.path() + ": errno "
          + Native.getLastError());
    }
  }

  /** Makes one entry as the dump recorded it. */
  private static void make(Path root, Entry e) throws IOException {
    Path p = e.path().isEmpty() ? root : root.resolve(e.path());
    String where = p.toString();
    int r = 0;
    switch (e.type()) {
      case 'd' -> {
        if (!e.path().isEmpty()) {
          Files.createDirectory(p);
        }
      }
      case 'f' -> Files.createFile(p);
      case 'l' -> Files.createSymbolicLink(p, Path.of(e.target()));
      case 'c' -> r = LibC.INSTANCE.mknod(where, S_IFCHR | e.mode(), e.rdev());
      case 'b' -> r = LibC.INSTANCE.mknod(where, S_IFBLK | e.mode(), e.rdev());
      default -> throw new IOException("unknown entry type '" + e.type() + "' for " + e.path() + " in " + FILE);
    }
    if (r == 0 && e.type() != 'l') {
      r = LibC.INSTANCE.chmod(where, e.mode()); // the process's umask applied to what was just made
    }
    if (r == 0) {
      r = LibC.INSTANCE.lchown(where, e.uid(), e.gid());
    }
    if (r != 0) {
      throw new IOException("cannot make " + where + " (" + e.type() + ", mode " + Integer.toOctalString(e.mode())
          + "): errno " + Native.getLastError());
    }
  }

  /**
   * Runs the dump's listing and check and the restore's making of a tmpfs on {@code scratch}
   * (a directory of the agent's, removed after) until compiled: a fresh agent otherwise runs
   * that code for the first time inside a migration's frozen window, interpreted (~14 ms for
   * the first dump's check of runc's three tmpfs mounts, ~1 ms compiled). Nothing is mounted
   * (the entries are made in plain directories; mount and umount are only bound, on a path
   * that does not exist): a lab's checks see an agent's mounts come and go otherwise.
   */
  public static void warmUp(Path scratch) throws IOException {
    List<Entry> made = List.of(new Entry("", 'd', 0755, 0, 0, 0, null), new Entry("pts", 'd', 0755, 0, 0, 0, null),
        new Entry("null", 'c', 0666, 0, 0, 0x103, null), new Entry("fd", 'l', 0777, 0, 0, 0, "/proc/self/fd"),
        new Entry("empty", 'f', 0644, 0, 0, 0, null));
    Mount m = new Mount("/dev", key("/dev"), "tmpfs", List.of("nosuid"), "size=64k,mode=755", made);
    try {
      Path images = Files.createDirectories(scratch.resolve("images"));
      String nowhere = scratch.resolve("no-such-dir").toString();
      LibC.INSTANCE.mount(m.source(), nowhere, "tmpfs", 0, m.data()); // ENOENT: the binding is made, nothing mounted
      LibC.INSTANCE.umount2(nowhere, MNT_DETACH);
      for (int round = 0; round < 400; round++) {
        Path dir = Files.createDirectories(scratch.resolve("plain-" + round));
        for (Entry e : made) {
          make(dir, e);
        }
        List<Entry> listed = entries(dir);
        List<Mount> again = List.of(new Mount(dir.toAbsolutePath().toString(), m.key(), m.source(), m.options(), m.data(),
            listed));
        confirm(ProcessHandle.current().pid(), again);
        if (round % 4 == 0) {
          record(again, images);
          read(images);
          MountInfo.read(Path.of("/proc/self/mountinfo"));
        }
        Files2.deleteTree(dir);
      }
    } finally {
      Files2.deleteTree(scratch);
    }
  }
}
