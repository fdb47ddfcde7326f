package dev.ferry.runtime;

import dev.ferry.api.ContainerSpec;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Builds OCI bundles without a registry: a program installed on the host, the libraries
 * {@code ldd} lists for it, busybox for a shell, and any extra files the user names.
 */
public final class BundleBuilder {
  /** Where the app's stdout and stderr go inside the rootfs; it travels with the pod. */
  public static final String LOG_DIR = "/ferry/log";

  private static final String BUSYBOX = "/bin/busybox";

  private BundleBuilder() {}

  /**
   * Builds the bundle of an app container. The process runs as
   * {@code sh -c 'exec "$@" >>LOG 2>&1 </dev/null'}, so that its stdio are files inside the
   * container that CRIU can checkpoint and that keep working after a restore.
   */
  public static void buildApp(Path bundle, ContainerSpec spec) {
    Path rootfs = baseRootfs(bundle);
    String program = resolveProgram(spec.args().get(0));
    copyWithLibraries(Path.of(program), rootfs, Path.of(program));
    for (String extra : spec.extraPaths()) {
      Path p = Path.of(extra);
      if (!p.isAbsolute() || !Files.exists(p)) {
        throw new IllegalArgumentException("extra path " + extra + " must be an absolute path that exists on this host");
      }
      copyTree(p, rootfs);
    }
    List<String> args = new ArrayList<>();
    String log = LOG_DIR + "/" + spec.name() + ".log";
    args.addAll(List.of(BUSYBOX, "sh", "-c", "exec \"$@\" >>" + log + " 2>&1 </dev/null", "sh", program));
    args.addAll(spec.args().subList(1, spec.args().size()));
    writeConfig(bundle, args);
  }

  /** Builds the bundle of a pod's pause container: it only holds the pod's namespaces. */
  public static void buildPause(Path bundle) {
    baseRootfs(bundle);
    writeConfig(bundle, List.of(BUSYBOX, "sh", "-c", "exec /bin/busybox sleep 2147483647 >/dev/null 2>&1 </dev/null"));
  }

  /** The host path of a container's log file in a bundle. */
  public static Path logFile(Path bundle, String containerName) {
    return bundle.resolve("rootfs" + LOG_DIR + "/" + containerName + ".log");
  }

  /** Finds {@code name} on PATH (or checks an absolute path), with a clear error if missing. */
  public static String resolveProgram(String name) {
    if (name.contains("/")) {
      if (!Files.isExecutable(Path.of(name))) {
        throw new IllegalArgumentException("program " + name + " is not an executable file on this host");
      }
      return name;
    }
    for (String dir : System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin").split(":")) {
      File f = new File(dir, name);
      if (f.isFile() && f.canExecute()) {
        return f.getPath();
      }
    }
    throw new IllegalArgumentException("program '" + name + "' not found on PATH; install it or give its absolute path");
  }

  private static Path baseRootfs(Path bundle) {
    Path rootfs = bundle.resolve("rootfs");
    try {
      for (String d : List.of("bin", "dev", "proc", "sys", "tmp", "etc", "data", "run", LOG_DIR.substring(1))) {
        Files.createDirectories(rootfs.resolve(d));
      }
      copyFile(Path.of(BUSYBOX), rootfs.resolve("bin/busybox"));
      Path sh = rootfs.resolve("bin/sh");
      if (!Files.exists(sh, LinkOption.NOFOLLOW_LINKS)) {
        Files.createSymbolicLink(sh, Path.of("busybox"));
      }
      Files.writeString(rootfs.resolve("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n");
      Files.writeString(rootfs.resolve("etc/group"), "root:x:0:\n");
      Files.writeString(rootfs.resolve("etc/hosts"), "127.0.0.1 localhost\n");
      rootfs.resolve("tmp").toFile().setWritable(true, false);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot build rootfs in " + rootfs, e);
    }
    return rootfs;
  }

  private static void writeConfig(Path bundle, List<String> args) {
    Exec.checked("runc", "spec", "--bundle", bundle.toString());
    OciConfig.load(bundle).args(args).writableRoot().save();
  }

  /** Copies a binary and every library ldd lists for it to the same paths in the rootfs. */
  private static void copyWithLibraries(Path binary, Path rootfs, Path at) {
    copyFile(binary, rootfs.resolve(at.toString().substring(1)));
    for (String lib : libraries(binary)) {
      copyFile(Path.of(lib), rootfs.resolve(lib.substring(1)));
    }
  }

  static Set<String> libraries(Path binary) {
    Set<String> libs = new LinkedHashSet<>();
    Exec.Result r = Exec.run("ldd", binary.toString());
    if (!r.ok()) {
      return libs; // static binaries: "not a dynamic executable"
    }
    for (String line : r.stdout().split("\n")) {
      String l = line.strip();
      if (l.contains("not found")) {
        throw new IllegalArgumentException(binary + " needs a library that is missing on this host: " + l);
      }
      int arrow = l.indexOf("=> ");
      String path = arrow >= 0 ? l.substring(arrow + 3) : l;
      path = path.split(" ")[0];
      if (path.startsWith("/")) {
        libs.add(path);
      }
    }
    return libs;
  }

  private static void copyTree(Path src, Path rootfs) {
    try (Stream<Path> walk = Files.walk(src)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        Path dst = rootfs.resolve(p.toAbsolutePath().toString().substring(1));
        if (Files.isDirectory(p)) {
          Files.createDirectories(dst);
        } else {
          copyFile(p, dst);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy " + src, e);
    }
  }

  /** Copies the file a path resolves to (following symlinks), keeping its mode. */
  private static void copyFile(Path src, Path dst) {
    try {
      Files.createDirectories(dst.getParent());
      Files.copy(src, dst, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.COPY_ATTRIBUTES);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy " + src + " into the rootfs", e);
    }
  }
}
