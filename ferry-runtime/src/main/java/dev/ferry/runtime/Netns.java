package dev.ferry.runtime;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Named network namespaces (the ones `ip netns` manages under /run/netns). */
public final class Netns {
  public static final Path RUN_NETNS = Path.of("/run/netns");

  private Netns() {}

  public static Path path(String name) {
    return RUN_NETNS.resolve(name);
  }

  public static boolean exists(String name) {
    return Files.exists(path(name));
  }

  /** Creates the namespace with its loopback up; does nothing if it exists. */
  public static void add(String name) {
    if (!exists(name)) {
      Exec.checked("ip", "netns", "add", name);
    }
    Exec.checked("ip", "-n", name, "link", "set", "lo", "up");
  }

  /** Deletes the namespace; does nothing if it is gone already. */
  public static void delete(String name) {
    if (exists(name)) {
      Exec.Result r = Exec.run("ip", "netns", "delete", name);
      if (!r.ok() && exists(name)) {
        r.check();
      }
    }
  }

  /** A command line that runs {@code command} inside the namespace (network only). */
  public static List<String> in(String name, String... command) {
    List<String> c = new ArrayList<>(List.of("nsenter", "--net=" + path(name)));
    c.addAll(List.of(command));
    return c;
  }

  /** Names of all named namespaces starting with {@code prefix}. */
  public static List<String> list(String prefix) {
    List<String> names = new ArrayList<>();
    for (String line : Exec.run("ip", "netns", "list").stdout().split("\n")) {
      String n = line.strip().split(" ")[0];
      if (!n.isEmpty() && n.startsWith(prefix)) {
        names.add(n);
      }
    }
    return names;
  }
}
