package dev.ferry.cli.chaos;

import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.migration.Capacity;
import dev.ferry.migration.Coordinator;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What a lab holds on this machine and in its coordinator's store, with host names replaced by
 * "H": a pod that moved from host-a to host-b leaves the same snapshot as one that stayed, and
 * anything a migration left behind (a namespace, a container, a mount, a veth, a CRIU process,
 * a checkpoint file, an IPAM lease, a capacity reservation) shows as a difference.
 *
 * @param things by kind ("netns", "container", ...), the sorted normalized names
 */
public record LabSnapshot(Map<String, List<String>> things) {

  /** Takes the snapshot of {@code lab}. */
  public static LabSnapshot of(Lab lab, Coordinator coordinator) {
    LabConfig c = lab.config();
    Map<String, List<String>> t = new TreeMap<>();
    t.put("netns", sorted(Netns.list(c.name() + "-").stream().map(n -> norm(lab, n)).toList()));
    List<String> containers = Exec.run("runc", "list", "-q").stdout().lines().filter(id -> id.startsWith(c.name() + "-"))
        .toList();
    t.put("container", sorted(containers.stream().map(id -> norm(lab, id)).toList()));
    t.put("mount", sorted(mounts(lab, containers)));
    List<String> veths = new ArrayList<>();
    List<String> files = new ArrayList<>();
    for (LabConfig.HostEntry h : c.hosts()) {
      Exec.run("ip", "-n", h.netns(), "-o", "link", "show", "type", "veth").stdout().lines()
          // a pod's veth is named by a hash of its host and pod: only how many there are compares
          .forEach(l -> veths.add("veth"));
      files.addAll(migrationFiles(h.stateDir().resolve("migrations")));
    }
    t.put("veth", sorted(veths));
    t.put("checkpoint-file", sorted(files));
    t.put("criu-process", sorted(Exec.run("pgrep", "-af", "criu").stdout().lines()
        .filter(l -> l.contains("/" + c.name() + "/") && !l.contains("pgrep")).map(l -> norm(lab, l.replaceAll("^\\d+ ", "")))
        .toList()));
    t.put("lease", sorted(coordinator.ipam().leases().stream().map(l -> l.owner() + " " + l.kind() + " " + l.ip()).toList()));
    List<String> reservations = new ArrayList<>();
    for (Capacity.HostUsage u : coordinator.capacity().usage()) {
      u.reservations().forEach(r -> reservations.add(r.owner() + " " + r.kind() + " " + r.memoryMiB() + " MiB"));
    }
    t.put("reservation", sorted(reservations));
    return new LabSnapshot(t);
  }

  /** What {@code after} holds that this does not ("+") and what it lacks ("-"), by kind. */
  public List<String> differences(LabSnapshot after) {
    List<String> out = new ArrayList<>();
    for (String kind : things.keySet()) {
      List<String> extra = minus(after.things.getOrDefault(kind, List.of()), things.get(kind));
      List<String> missing = minus(things.get(kind), after.things.getOrDefault(kind, List.of()));
      if (!extra.isEmpty()) {
        out.add(kind + " left behind: " + extra);
      }
      if (!missing.isEmpty()) {
        out.add(kind + " gone: " + missing);
      }
    }
    return out;
  }

  private static List<String> minus(List<String> a, List<String> b) {
    List<String> rest = new ArrayList<>(a);
    b.forEach(rest::remove);
    return rest;
  }

  /**
   * The lab's mounts, but for those of a pod's own tmpfs copies ({@code hosts/H/pods/P/tmpfs/},
   * see {@code PodTmpfs}) on the host where that pod runs: a pod restored on a host has them, one
   * started there has none, and both are the same pod. On any other host they are left behind.
   */
  private static List<String> mounts(Lab lab, List<String> containers) {
    List<String> out = new ArrayList<>();
    java.util.regex.Pattern podTmpfs = java.util.regex.Pattern.compile(".*/hosts/([^/]+)/pods/([^/]+)/tmpfs/.*");
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
        String point = line.split(" ")[4];
        if (point.startsWith(lab.config().runDir().toString()) || point.startsWith(lab.config().stateDir().toString())) {
          java.util.regex.Matcher m = podTmpfs.matcher(point);
          String prefix = m.matches() ? lab.config().name() + "-" + m.group(1) + "-" + m.group(2) + "-" : null;
          if (prefix != null && containers.stream().anyMatch(id -> id.startsWith(prefix))) {
            continue;
          }
          out.add(norm(lab, point));
        }
      }
    } catch (IOException e) {
      out.add("cannot read /proc/self/mountinfo: " + e.getMessage());
    }
    return out;
  }

  private static List<String> migrationFiles(Path dir) {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(p -> !p.equals(dir)).map(p -> dir.relativize(p).toString()).limit(20).toList();
    } catch (IOException e) {
      return List.of("cannot list " + dir + ": " + e.getMessage());
    }
  }

  /** Host names (and migration ids, which differ every run) out of a name. */
  private static String norm(Lab lab, String s) {
    for (LabConfig.HostEntry h : lab.config().hosts()) {
      s = s.replace(h.name(), "H").replace(h.ip(), "H-ip");
    }
    return s.replaceAll("m-\\d{8}-\\d{6}-[0-9a-f]{4}", "M");
  }

  private static List<String> sorted(List<String> xs) {
    List<String> s = new ArrayList<>(xs);
    s.sort(null);
    return List.copyOf(s);
  }
}
