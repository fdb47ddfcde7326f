package dev.ferry.runtime;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.api.Json;
import java.nio.file.Path;
import java.util.List;

/** Reads and edits a bundle's config.json (the OCI runtime spec). */
public final class OciConfig {
  private final Path file;
  private final ObjectNode root;

  private OciConfig(Path file, ObjectNode root) {
    this.file = file;
    this.root = root;
  }

  public static OciConfig load(Path bundle) {
    Path f = bundle.resolve("config.json");
    return new OciConfig(f, (ObjectNode) Json.readFile(f, ObjectNode.class));
  }

  public void save() {
    Json.writeFile(file, root);
  }

  public OciConfig args(List<String> args) {
    ObjectNode p = (ObjectNode) root.get("process");
    ArrayNode a = p.putArray("args");
    args.forEach(a::add);
    p.put("terminal", false);
    return this;
  }

  public OciConfig hostname(String hostname) {
    if (hostname == null) {
      root.remove("hostname");
    } else {
      root.put("hostname", hostname);
    }
    return this;
  }

  public OciConfig writableRoot() {
    ((ObjectNode) root.get("root")).put("readonly", false);
    return this;
  }

  /**
   * Sets the namespaces. A null path means "a new namespace of that type"; otherwise the
   * container joins the namespace at that path (a pod's network, or the pause container's
   * IPC and UTS namespaces).
   */
  public OciConfig namespaces(String netPath, String ipcPath, String utsPath) {
    ObjectNode linux = (ObjectNode) root.get("linux");
    ArrayNode ns = linux.putArray("namespaces");
    ns.addObject().put("type", "pid");
    ns.addObject().put("type", "mount");
    addNs(ns, "network", netPath);
    addNs(ns, "ipc", ipcPath);
    addNs(ns, "uts", utsPath);
    return this;
  }

  public OciConfig cgroupsPath(String path) {
    ((ObjectNode) root.get("linux")).put("cgroupsPath", path);
    return this;
  }

  /** Memory limit in bytes (0: none) and CPU shares (0: default). */
  public OciConfig resources(long memoryBytes, long cpuShares) {
    ObjectNode linux = (ObjectNode) root.get("linux");
    ObjectNode res = linux.has("resources") ? (ObjectNode) linux.get("resources") : linux.putObject("resources");
    if (memoryBytes > 0) {
      res.putObject("memory").put("limit", memoryBytes);
    }
    if (cpuShares > 0) {
      res.putObject("cpu").put("shares", cpuShares);
    }
    return this;
  }

  /**
   * Bind-mounts {@code source} (a host directory) at {@code destination} in the container,
   * read-write; replaces a mount at that destination, so that a bundle moved to another host
   * can point at that host's directory.
   */
  public OciConfig bindMount(String source, String destination) {
    ArrayNode mounts = root.has("mounts") ? (ArrayNode) root.get("mounts") : ((ObjectNode) root).putArray("mounts");
    for (int i = mounts.size() - 1; i >= 0; i--) {
      if (destination.equals(mounts.get(i).path("destination").asText())) {
        mounts.remove(i);
      }
    }
    ObjectNode m = mounts.addObject();
    m.put("destination", destination).put("type", "bind").put("source", source);
    m.putArray("options").add("rbind").add("rw");
    return this;
  }

  /** Sets an annotation (runc keeps annotations with the container as its labels). */
  public OciConfig annotation(String key, String value) {
    ObjectNode a = root.has("annotations") ? (ObjectNode) root.get("annotations") : root.putObject("annotations");
    a.put(key, value);
    return this;
  }

  /** An annotation's value, null if absent. */
  public String annotationValue(String key) {
    return root.path("annotations").path(key).asText(null);
  }

  public String hostnameValue() {
    return root.path("hostname").asText(null);
  }

  private static void addNs(ArrayNode ns, String type, String path) {
    ObjectNode n = ns.addObject().put("type", type);
    if (path != null) {
      n.put("path", path);
    }
  }
}
