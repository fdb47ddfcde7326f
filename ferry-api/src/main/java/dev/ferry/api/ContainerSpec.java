package dev.ferry.api;

import java.util.List;

/**
 * One app container of a pod, built from programs installed on the host.
 *
 * @param name container name, unique in the pod
 * @param args program and its arguments; the program is looked up on the host's PATH
 * @param extraPaths host files or directories copied into the rootfs at the same path
 */
public record ContainerSpec(String name, List<String> args, List<String> extraPaths) {
  public ContainerSpec {
    args = List.copyOf(args);
    extraPaths = extraPaths == null ? List.of() : List.copyOf(extraPaths);
  }
}
