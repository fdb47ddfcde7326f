package dev.ferry.api;

import java.util.List;

/**
 * What to run as a pod.
 *
 * @param identity the pod's identity, assigned by the coordinator
 * @param containers app containers, started in order
 * @param memoryLimitMiB memory limit per container (cgroup), also what the pod reserves on its host
 * @param cpuShares relative CPU weight per container
 * @param volumes directories from outside the rootfs mounted into every app container
 */
public record PodSpec(PodIdentity identity, List<ContainerSpec> containers, long memoryLimitMiB, long cpuShares,
    List<VolumeSpec> volumes) {
  public PodSpec {
    containers = List.copyOf(containers);
    volumes = volumes == null ? List.of() : List.copyOf(volumes);
  }

  /** A pod without volumes. */
  public PodSpec(PodIdentity identity, List<ContainerSpec> containers, long memoryLimitMiB, long cpuShares) {
    this(identity, containers, memoryLimitMiB, cpuShares, List.of());
  }
}
