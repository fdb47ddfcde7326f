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
 * @param runtime the container runtime: "runc" (runc + CRIU, the default; null means it too) or
 *     "runsc" (gVisor). Part of the pod: a pod only migrates to a host with the same runtime.
 * @param drain (runsc) a command run inside the pod, after its network is cut and before its
 *     checkpoint, that closes its clients' TCP connections (runsc cannot save them), e.g.
 *     {@code redis-cli client kill type normal}; empty for none
 */
public record PodSpec(PodIdentity identity, List<ContainerSpec> containers, long memoryLimitMiB, long cpuShares,
    List<VolumeSpec> volumes, String runtime, List<String> drain) {
  public static final String RUNC = "runc";
  public static final String RUNSC = "runsc";

  public PodSpec {
    containers = List.copyOf(containers);
    volumes = volumes == null ? List.of() : List.copyOf(volumes);
    runtime = runtime == null || runtime.isBlank() ? RUNC : runtime;
    drain = drain == null ? List.of() : List.copyOf(drain);
  }

  /** A runc pod. */
  public PodSpec(PodIdentity identity, List<ContainerSpec> containers, long memoryLimitMiB, long cpuShares,
      List<VolumeSpec> volumes) {
    this(identity, containers, memoryLimitMiB, cpuShares, volumes, RUNC, List.of());
  }

  /** Whether the pod runs in gVisor sandboxes. */
  public boolean runsc() {
    return RUNSC.equals(runtime);
  }

  /** A pod without volumes. */
  public PodSpec(PodIdentity identity, List<ContainerSpec> containers, long memoryLimitMiB, long cpuShares) {
    this(identity, containers, memoryLimitMiB, cpuShares, List.of());
  }
}
