package dev.ferry.runtime;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Keeps runc's masked directories out of CRIU's archives. runc masks directories such as
 * {@code /proc/acpi} and {@code /sys/firmware} with an empty read-only tmpfs each, and CRIU
 * archives every tmpfs of a container with a {@code tar} and a {@code gzip} process at the dump
 * and extracts it with two more at the restore: ~4 ms a mount on each side, inside the frozen
 * window, for mounts that hold nothing and can hold nothing.
 *
 * <p>Instead, the dump names each such mount external ({@code external mnt[PATH]:KEY} in a CRIU
 * configuration file, which runc hands to CRIU when the container's {@code org.criu.config}
 * annotation names it), and the restore bind-mounts one empty read-only tmpfs of this host's
 * agent there ({@code external mnt[KEY]:DIR}): the directory stays empty and read-only, as masked.
 * A restored container's masked directory is then a bind of that tmpfs, which the next dump
 * names external again. A mount that is not read-only or not empty is left to CRIU.
 */
public final class MaskedMounts {
  /** The annotation runc reads for a CRIU configuration file (it otherwise names /etc/criu/runc.conf). */
  public static final String ANNOTATION = "org.criu.config";
  /** The configuration file, in the container's bundle. */
  public static final String CONFIG_FILE = "criu.conf";
  private static final String KEY_PREFIX = "ferry-masked";

  private final Path emptyDir;

  private MaskedMounts(Path emptyDir) {
    this.emptyDir = emptyDir;
  }

  /**
   * An empty read-only tmpfs mounted at {@code dir} (once; an agent started again finds it), of
   * its own: a bind of a directory on the pods' own file system would look to CRIU like a bind
   * of the container's root. It goes with its state directory ({@link Files2#deleteTree}
   * unmounts first).
   */
  public static MaskedMounts mountAt(Path dir) {
    try {
      Files.createDirectories(dir);
      if (!Files2.mountsUnder(dir).contains(dir.toAbsolutePath().normalize().toString())) {
        Exec.checked("mount", "-t", "tmpfs", "-o", "ro,nosuid,nodev,noexec,size=4k,mode=0555", "ferry-masked",
            dir.toString());
      }
      return new MaskedMounts(dir.toAbsolutePath().normalize());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + dir, e);
    }
  }

  /** Binds at restores to {@code emptyDir} as it is (tests). */
  static MaskedMounts at(Path emptyDir) {
    return new MaskedMounts(emptyDir.toAbsolutePath().normalize());
  }

  /** The key a masked directory's mount has in the images. */
  static String key(String path) {
    return KEY_PREFIX + path.replace('/', '-');
  }

  /** Which masked directories a dump named external, in its image directory (the restore binds those). */
  static final String LIST_FILE = "ferry-masked-mounts";

  /**
   * Before a dump of the container of process {@code pid}: names external each of {@code
   * maskedPaths} that is a read-only mount point there with nothing in it, lists them in
   * {@code imageDir}, and returns the lines for CRIU's configuration file (the file the
   * container's annotation names).
   */
  static List<String> prepareDump(long pid, List<String> maskedPaths, Path imageDir) throws IOException {
    List<String> readOnly = readOnlyMountPoints(pid);
    List<String> external = new ArrayList<>();
    List<String> conf = new ArrayList<>();
    for (String p : maskedPaths) {
      if (readOnly.contains(p) && isEmptyDir(Path.of("/proc/" + pid + "/root" + p))) {
        external.add(p);
        conf.add("external mnt[" + p + "]:" + key(p));
      }
    }
    Files.write(imageDir.resolve(LIST_FILE), external);
    return conf;
  }

  /**
   * Before a restore from {@code imageDir}: the lines of CRIU's configuration file that bind
   * each masked directory its dump named external to the empty tmpfs; none for an image
   * without the list.
   */
  List<String> prepareRestore(Path imageDir) throws IOException {
    Path list = imageDir.resolve(LIST_FILE);
    List<String> conf = new ArrayList<>();
    if (Files.exists(list)) {
      for (String p : Files.readAllLines(list)) {
        if (!p.isBlank()) {
          conf.add("external mnt[" + key(p.strip()) + "]:" + emptyDir);
        }
      }
    }
    return conf;
  }

  /** Mount points of process {@code pid}'s mount namespace mounted read-only, as it sees them. */
  private static List<String> readOnlyMountPoints(long pid) {
    List<String> ro = new ArrayList<>();
    try {
      for (MountInfo m : MountInfo.read(Path.of("/proc/" + pid + "/mountinfo"))) {
        if (m.options().contains("ro")) {
          ro.add(m.mountPoint());
        }
      }
    } catch (IOException e) {
      // the process is gone: nothing to name, CRIU will say why the dump failed
    }
    return ro;
  }

  private static boolean isEmptyDir(Path dir) {
    try (var entries = Files.list(dir)) {
      return entries.findAny().isEmpty();
    } catch (IOException e) {
      return false;
    }
  }
}
