package dev.ferry.api;

import java.util.List;

/**
 * What to run as a pod.
 *
 * @param identity the pod's identity, assigned by the coordinator
 * @param containers app containers, started in order
 * @param memoryLimitMiB memory limit per container (cgroup), also what the pod reserves on its host
 * @param cpuShares relative CPU weight per container
 */
public record PodSpec(PodIdentity identity, List<ContainerSpec> containers, long memoryLimitMiB, long cpuShares) {
  public PodSpec {
    containers = List.copyOf(containers);
  }
}
