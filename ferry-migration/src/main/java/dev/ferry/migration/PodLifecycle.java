package dev.ferry.migration;

import dev.ferry.agent.AgentClient;
import dev.ferry.api.ContainerSpec;
import dev.ferry.api.PodIdentity;
import dev.ferry.api.PodSpec;
import dev.ferry.api.VolumeSpec;
import java.util.List;
import java.util.UUID;

/**
 * Creating and deleting pods outside migrations: what a pod claims (its name and address in
 * the IPAM, a slot and its memory on its host, its disks) is claimed before anything exists and
 * given back when it is gone or failed to start, by the call that claimed it only.
 */
final class PodLifecycle {
  private final MigrationStore store;
  private final HostDirectory hosts;
  private final String podSubnet;
  private final int prefixLength;
  private final Ipam ipam;
  private final Capacity capacity;
  private final Services services;
  private final Disks disks;

  PodLifecycle(MigrationStore store, HostDirectory hosts, String podSubnet, int prefixLength, Ipam ipam,
      Capacity capacity, Services services, Disks disks) {
    this.store = store;
    this.hosts = hosts;
    this.podSubnet = podSubnet;
    this.prefixLength = prefixLength;
    this.ipam = ipam;
    this.capacity = capacity;
    this.services = services;
    this.disks = disks;
  }

  PodRecord run(String host, String name, List<ContainerSpec> containers, long memoryMiB, long cpuShares,
      List<VolumeSpec> volumes) {
    return run(host, name, containers, memoryMiB, cpuShares, volumes, PodSpec.RUNC, List.of());
  }

  PodRecord run(String host, String name, List<ContainerSpec> containers, long memoryMiB, long cpuShares,
      List<VolumeSpec> volumes, String runtime, List<String> drain) {
    checkRuntime(runtime, containers, volumes);
    checkDisks(volumes);
    if (store.pod(name).isPresent()) {
      throw new IllegalArgumentException("a pod named '" + name + "' exists already (on " + store.pod(name).get().host() + ")");
    }
    // the name's claim: one address lease per pod name, refused to a second creator
    String ip = ipam.leaseNew(podSubnet, Ipam.podOwner(name), "pod", host);
    PodSpec spec;
    try {
      capacity.reserve(host, Capacity.podOwner(name), "pod", memoryMiB);
      PodIdentity id = new PodIdentity(UUID.randomUUID().toString(), name, ip, prefixLength, Coordinator.macFor(ip));
      spec = new PodSpec(id, containers, memoryMiB, cpuShares, volumes, runtime, drain);
      store.insertPod(new PodRecord(spec, host, "starting")); // claims the UID, IP and MAC before anything exists
    } catch (RuntimeException e) {
      release(name);
      throw e;
    }
    try (AgentClient agent = hosts.connect(host)) {
      attachDisks(spec, host);
      agent.runPod(spec);
      store.setPodState(name, "running");
      return new PodRecord(spec, host, "running");
    } catch (RuntimeException e) {
      detachDisks(spec, host);
      store.deletePod(name);
      release(name);
      throw e;
    }
  }

  void delete(PodRecord p) {
    String name = p.name();
    if (!"running".equals(p.state()) && !"starting".equals(p.state())) {
      throw new IllegalStateException("pod '" + name + "' is " + p.state() + "; wait for its migration to end");
    }
    try (AgentClient agent = hosts.connect(p.host())) {
      try {
        agent.deletePod(name);
      } catch (AgentClient.AgentException e) {
        if (e.status() != 404) {
          throw e;
        }
      }
    }
    for (Services.Service s : services.ofPod(name)) {
      services.remove(s.name());
    }
    detachDisks(p.spec(), p.host());
    store.deletePod(name);
    release(name);
  }

  private void release(String pod) {
    ipam.release(Ipam.podOwner(pod));
    capacity.release(Capacity.podOwner(pod));
  }

  /** A known runtime; a runsc pod is one gVisor sandbox: one app container, no volumes (for now). */
  static void checkRuntime(String runtime, List<ContainerSpec> containers, List<VolumeSpec> volumes) {
    if (runtime != null && !List.of(PodSpec.RUNC, PodSpec.RUNSC).contains(runtime)) {
      throw new IllegalArgumentException("unknown runtime '" + runtime + "'; use runc or runsc");
    }
    if (PodSpec.RUNSC.equals(runtime) && containers.size() != 1) {
      throw new IllegalArgumentException("a runsc pod is one gVisor sandbox with one app container; this one has "
          + containers.size());
    }
    if (PodSpec.RUNSC.equals(runtime) && !volumes.isEmpty()) {
      throw new IllegalArgumentException("volumes and disks are not supported for runsc pods yet (runsc's checkpoint"
          + " holds the sandbox's own file system; an outside mount would have to be re-attached at the restore)");
    }
  }

  /** Each disk exists and no other pod uses it. */
  private void checkDisks(List<VolumeSpec> volumes) {
    for (VolumeSpec v : volumes) {
      if (!v.kind().equals("disk")) {
        continue;
      }
      if (disks.find(v.name()) == null) {
        throw new IllegalArgumentException("unknown disk '" + v.name() + "'; create it first: ferry disk create " + v.name());
      }
      for (PodRecord other : store.pods()) {
        if (other.spec().volumes().stream().anyMatch(o -> o.kind().equals("disk") && o.name().equals(v.name()))) {
          throw new IllegalStateException("disk " + v.name() + " is used by pod '" + other.name() + "' already");
        }
      }
    }
  }

  private void attachDisks(PodSpec spec, String host) {
    spec.volumes().stream().filter(v -> v.kind().equals("disk")).forEach(v -> disks.attach(v.name(), host));
  }

  private void detachDisks(PodSpec spec, String host) {
    spec.volumes().stream().filter(v -> v.kind().equals("disk")).forEach(v -> disks.detach(v.name(), host));
  }
}
