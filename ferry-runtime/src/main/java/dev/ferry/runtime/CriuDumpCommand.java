package dev.ferry.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code criu dump} command line that asks of CRIU what {@code runc checkpoint} asks of it
 * over RPC (runc 1.1's libcontainer), read from runc's state of the container: its root, its
 * cgroups and freezer, its external network and PID namespaces, its bind and cgroup mounts,
 * masked files and device nodes as external mounts, and the CRIU configuration its {@code
 * org.criu.config} annotation names.
 *
 * <p>Why Ferry runs it itself for a lazy dump: inside the frozen window, {@code runc checkpoint
 * --lazy-pages} starts CRIU three times (a version query, a feature check, then the dump) and
 * answers each of the dump's notifications over RPC, ~20-30 ms here that the pod pays frozen.
 * What runc does after a dump (remove the container) is left to {@link RuncRuntime#destroy},
 * which the source agent calls once the pod runs elsewhere; until then runc still knows the
 * container, as it does while its own lazy dump serves pages. A restore is still runc's: it
 * reads the {@code descriptors.json} this class writes, as runc's checkpoint would.
 */
final class CriuDumpCommand {
  /** runc's name for the image file that lists the init process's standard descriptors. */
  static final String DESCRIPTORS_FILE = "descriptors.json";

  private CriuDumpCommand() {}

  /**
   * Arguments (after the CRIU binary) for a lazy dump of the container whose runc state is
   * {@code state}: images in {@code imageDir}, log {@code dump.log} in {@code workDir}, pages
   * served on {@code ip:port}, readiness written to descriptor {@code statusFd}.
   */
  static List<String> lazy(JsonNode state, Path imageDir, Path workDir, String ip, int port, int statusFd)
      throws IOException {
    List<String> args = common(state, imageDir, workDir);
    args.addAll(List.of("--lazy-pages", "--address", ip, "--port", Integer.toString(port),
        "--status-fd", Integer.toString(statusFd)));
    return args;
  }

  private static List<String> common(JsonNode state, Path imageDir, Path workDir) throws IOException {
    JsonNode config = state.path("config");
    long pid = state.path("init_process_pid").asLong();
    if (pid <= 0) {
      throw new IOException("runc's state of " + state.path("id").asText() + " names no init process");
    }
    List<String> args = new ArrayList<>(List.of("dump", "--no-default-config", "-t", Long.toString(pid),
        "-D", imageDir.toString(), "-W", workDir.toString(), "-o", "dump.log", "-v4",
        "--root", config.path("rootfs").asText(), "--manage-cgroups", "--tcp-established"));
    String configFile = label(config, MaskedMounts.ANNOTATION);
    if (configFile != null && Files.isRegularFile(Path.of(configFile))) {
      args.addAll(List.of("--config", configFile));
    }
    String freezer = freezerCgroup(state.path("cgroup_paths"));
    if (!freezer.isEmpty()) {
      args.addAll(List.of("--freeze-cgroup", freezer));
    }
    for (String external : externalNamespaces(config)) {
      args.addAll(List.of("--external", external));
    }
    List<MountInfo> mounts = MountInfo.read(Path.of("/proc", Long.toString(pid), "mountinfo"));
    for (String[] m : externalMounts(config, pid, mounts)) {
      args.addAll(List.of("--ext-mount-map", m[0] + ":" + m[1]));
    }
    return args;
  }

  /** Writes what runc's checkpoint writes beside the images for its restore: the init process's standard descriptors. */
  static void writeDescriptors(JsonNode state, Path imageDir) throws IOException {
    JsonNode fds = state.path("external_descriptors");
    Path file = imageDir.resolve(DESCRIPTORS_FILE);
    Files.writeString(file, Json.write(fds.isArray() ? fds : Json.MAPPER.createArrayNode()));
    Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
  }

  /** The freezer CRIU freezes the tree with: cgroup v1's freezer, else the unified cgroup. */
  static String freezerCgroup(JsonNode cgroupPaths) {
    String v1 = cgroupPaths.path("freezer").asText("");
    return v1.isEmpty() ? cgroupPaths.path("").asText("") : v1;
  }

  /**
   * {@code TYPE[INODE]:KEY} for the network and PID namespaces the container joined by path
   * (runc's extRootNetNS and extRootPidNS): CRIU leaves them out of the images and the restore
   * joins the namespace the target's runc configuration names.
   */
  static List<String> externalNamespaces(JsonNode config) throws IOException {
    List<String> out = new ArrayList<>();
    for (JsonNode ns : config.path("namespaces")) {
      String type = ns.path("type").asText();
      String path = ns.path("path").asText("");
      if (path.isEmpty() || !(type.equals("NEWNET") || type.equals("NEWPID"))) {
        continue;
      }
      Object inode = Files.getAttribute(Path.of(path), "unix:ino");
      String name = type.equals("NEWNET") ? "net" : "pid";
      out.add(name + "[" + inode + "]:" + (type.equals("NEWNET") ? "extRootNetNS" : "extRootPidNS"));
    }
    return out;
  }

  /**
   * Key and value of each external mount, in runc's order: bind mounts (key and value both the
   * destination), the cgroup v1 hierarchies bound under a cgroup mount when the container has no
   * cgroup namespace (as its mount table shows them), masked paths that are files (bound to
   * /dev/null), and device nodes.
   */
  static List<String[]> externalMounts(JsonNode config, long pid, List<MountInfo> mountInfo) {
    List<String[]> out = new ArrayList<>();
    boolean cgroupNs = false;
    for (JsonNode ns : config.path("namespaces")) {
      cgroupNs |= ns.path("type").asText().equals("NEWCGROUP");
    }
    for (JsonNode m : config.path("mounts")) {
      String dest = m.path("destination").asText();
      switch (m.path("device").asText()) {
        case "bind" -> out.add(new String[] {dest, dest});
        case "cgroup" -> {
          if (!cgroupNs) {
            for (String hierarchy : cgroupMountsUnder(dest, mountInfo)) {
              out.add(new String[] {hierarchy, hierarchy});
            }
          }
        }
        default -> { }
      }
    }
    for (JsonNode p : config.path("mask_paths")) {
      Path inside = Path.of("/proc/" + pid + "/root" + p.asText());
      if (Files.exists(inside) && !Files.isDirectory(inside)) {
        out.add(new String[] {p.asText(), "/dev/null"});
      }
    }
    for (JsonNode d : config.path("devices")) {
      String path = d.path("path").asText("");
      if (!path.isEmpty()) {
        out.add(new String[] {path, path});
      }
    }
    return out;
  }

  /** Mount points of cgroup file systems strictly below {@code dir}, from a mount table. */
  static List<String> cgroupMountsUnder(String dir, List<MountInfo> mountInfo) {
    List<String> out = new ArrayList<>();
    for (MountInfo m : mountInfo) {
      if (m.fsType().startsWith("cgroup") && m.mountPoint().startsWith(dir + "/")) {
        out.add(m.mountPoint());
      }
    }
    return out;
  }

  /** The value of annotation {@code key} as runc keeps it with a container (its labels), or null. */
  static String label(JsonNode config, String key) {
    for (JsonNode label : config.path("labels")) {
      if (label.asText().startsWith(key + "=")) {
        return label.asText().substring(key.length() + 1);
      }
    }
    return null;
  }
}
