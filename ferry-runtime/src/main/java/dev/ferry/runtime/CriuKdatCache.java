package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps CRIU's kernel-feature cache ({@code /run/criu.kdat}) on hosts whose {@code /run} is not
 * a tmpfs.
 *
 * <p>Every CRIU run starts by probing the kernel (~25-30 ms here) unless it can load that cache,
 * and CRIU only writes the cache to a tmpfs, so that a reboot (maybe into another kernel)
 * clears it. On a host with a disk-backed {@code /run} every dump, restore and lazy-pages daemon
 * pays the probe again, inside the pod's frozen window. CRIU reads the cache from any file
 * system, though: Ferry lets CRIU write it in a private mount namespace whose {@code /run} is a
 * tmpfs, copies it to the real {@code /run}, and writes the boot id beside it. A cache from
 * another boot or another CRIU binary is made again; CRIU itself discards one whose build
 * stamp does not match.
 */
public final class CriuKdatCache {
  private static final Logger LOG = LoggerFactory.getLogger(CriuKdatCache.class);
  static final Path CACHE = Path.of("/run/criu.kdat");
  static final Path STAMP = Path.of("/run/ferry-criu.kdat.stamp");
  private static final Path BOOT_ID = Path.of("/proc/sys/kernel/random/boot_id");

  private CriuKdatCache() {}

  /** Makes sure CRIU finds a cache made on this boot by {@code criu}; best effort, never throws. */
  public static synchronized void ensure(String criu) {
    try {
      if (runIsTmpfs()) {
        return; // CRIU keeps the cache itself
      }
      String stamp = stamp(criu);
      if (Files.isRegularFile(CACHE) && Files.isRegularFile(STAMP) && stamp.equals(Files.readString(STAMP))) {
        return;
      }
      long t0 = System.nanoTime();
      Path tmp = Path.of("/run/criu.kdat.ferry-" + ProcessHandle.current().pid());
      // a private mount namespace: /run there is a fresh tmpfs, the real one is reachable as $1
      String script = "set -e; mount --make-rprivate /; real=$(mktemp -d); mount --bind /run \"$real\"; "
          + "mount -t tmpfs ferry-kdat /run; \"$2\" check >/dev/null 2>&1 || true; "
          + "cp /run/criu.kdat \"$real/$(basename \"$3\")\"";
      Exec.Result r = Exec.run(List.of("unshare", "-m", "sh", "-c", script, "sh", "/run", criu, tmp.toString()),
          Duration.ofSeconds(30), Map.of());
      if (!r.ok() || !Files.isRegularFile(tmp)) {
        Files.deleteIfExists(tmp);
        LOG.warn("could not make CRIU's kernel-feature cache (every CRIU run probes the kernel again, ~30 ms): {}",
            r.stderr().strip());
        return;
      }
      Files.move(tmp, CACHE, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      Files.writeString(STAMP, stamp);
      LOG.info("CRIU's kernel-feature cache written to {} in {} ms", CACHE, (System.nanoTime() - t0) / 1_000_000);
    } catch (IOException | RuntimeException e) {
      LOG.warn("could not make CRIU's kernel-feature cache: {}", e.toString());
    }
  }

  private static boolean runIsTmpfs() throws IOException {
    FileStore store = Files.getFileStore(Path.of("/run"));
    return "tmpfs".equals(store.type());
  }

  /** This boot and this CRIU binary: a cache made under either of another is made again. */
  static String stamp(String criu) throws IOException {
    String binary = criu;
    Path p = Path.of(criu);
    if (Files.isRegularFile(p)) {
      binary = p.toRealPath() + " " + Files.getLastModifiedTime(p.toRealPath()).toMillis();
    }
    return Files.readString(BOOT_ID).strip() + " " + binary + "\n";
  }
}
