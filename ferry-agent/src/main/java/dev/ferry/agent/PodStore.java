package dev.ferry.agent;

import dev.ferry.api.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/** The agent's durable record of its pods: one JSON file per pod, replaced atomically. */
public final class PodStore {
  private final Path podsDir;

  public PodStore(Path stateDir) {
    this.podsDir = stateDir.resolve("pods");
  }

  public Path podDir(String name) {
    return podsDir.resolve(name);
  }

  /** Where a lab network disk is attached on this host (the lab bind-mounts it there). */
  public Path diskDir(String disk) {
    return podsDir.resolveSibling("disks").resolve(disk);
  }

  /**
   * A host volume of a pod: inside its first app container's bundle, beside the rootfs, so that
   * it travels with the bundle (pre-copy while the pod runs, changes in the frozen round).
   */
  public Path hostVolume(String pod, String firstContainer, String volume) {
    return bundle(pod, firstContainer).resolve("volumes").resolve(volume);
  }

  public Path bundle(String pod, String container) {
    return podDir(pod).resolve("bundles").resolve(container);
  }

  public Optional<LocalPod> find(String name) {
    Path f = podDir(name).resolve("pod.json");
    return Files.exists(f) ? Optional.of(Json.readFile(f, LocalPod.class)) : Optional.empty();
  }

  public LocalPod get(String name) {
    return find(name).orElseThrow(() -> ApiException.notFound("no pod '" + name + "' on this host"));
  }

  public void save(LocalPod pod) {
    Json.writeFile(podDir(pod.name()).resolve("pod.json"), pod);
  }

  public void remove(String name) {
    try {
      Files.deleteIfExists(podDir(name).resolve("pod.json"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public List<LocalPod> all() {
    List<LocalPod> pods = new ArrayList<>();
    if (!Files.isDirectory(podsDir)) {
      return pods;
    }
    try (Stream<Path> dirs = Files.list(podsDir)) {
      dirs.sorted().forEach(d -> find(d.getFileName().toString()).ifPresent(pods::add));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return pods;
  }
}
