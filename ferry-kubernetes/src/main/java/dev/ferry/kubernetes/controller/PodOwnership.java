package dev.ferry.kubernetes.controller;

import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Who answers for a pod, and so whether Ferry can hand its place over to the new pod without a
 * workload controller deleting the new pod or re-creating the old one.
 *
 * <ul>
 *   <li>No controller (a bare pod): nothing to hand over.
 *   <li>A ReplicaSet (a Deployment's): at the commit point the new pod takes the source's labels
 *       and owner reference after the source was marked the first to go on a scale-down; see
 *       {@link PodHandover#commit}.
 *   <li>Refused, with the reason: StatefulSet (its pods are known by name, and a name cannot
 *       pass from a running pod to another), DaemonSet (one pod per node: nowhere to move it),
 *       Job (counts its pods by uid), any other controller (Ferry cannot know how it counts its
 *       pods), static pods (the node's kubelet owns them), pods on the host's network (their IP
 *       is the node's), and Ferry's own placeholders.
 * </ul>
 */
final class PodOwnership {
  private PodOwnership() {}

  /** Kinds of Kubernetes' own workload controllers, recognised also in an owner reference without {@code controller: true}. */
  private static final List<String> WORKLOADS = List.of("ReplicaSet", "StatefulSet", "DaemonSet", "Job",
      "ReplicationController");

  /**
   * The pod's controller, if any: the owner reference with {@code controller: true}, else one
   * naming a workload kind (such a reference is a controller's, whatever its flag says).
   */
  static Optional<OwnerReference> controller(Pod p) {
    List<OwnerReference> refs = p.getMetadata().getOwnerReferences();
    return refs.stream().filter(o -> Boolean.TRUE.equals(o.getController())).findFirst()
        .or(() -> refs.stream().filter(o -> WORKLOADS.contains(o.getKind())).findFirst());
  }

  /** Whether the pod's controller is a ReplicaSet, whose place the new pod takes at the commit point. */
  static boolean replicaSetOwned(Pod p) {
    return controller(p).map(o -> "ReplicaSet".equals(o.getKind()) && "apps/v1".equals(o.getApiVersion())).orElse(false);
  }

  /** Why Ferry does not move this pod, in words that name what owns it; empty if it can. */
  static Optional<String> refusal(Pod p) {
    String pod = "pod " + p.getMetadata().getNamespace() + "/" + p.getMetadata().getName();
    Map<String, String> a = p.getMetadata().getAnnotations();
    if (a != null && a.containsKey("kubernetes.io/config.mirror")) {
      return Optional.of(pod + " is a static pod of its node's kubelet: it belongs to that node");
    }
    Map<String, String> labels = p.getMetadata().getLabels();
    if (labels != null && labels.containsKey(PlaceholderPod.FOR_LABEL)) {
      return Optional.of(pod + " is a Ferry placeholder of a migration in progress");
    }
    if (Boolean.TRUE.equals(p.getSpec().getHostNetwork())) {
      return Optional.of(pod + " uses its node's network (hostNetwork): its IP is the node's and cannot move");
    }
    Optional<OwnerReference> c = controller(p);
    if (c.isEmpty() || replicaSetOwned(p)) {
      return Optional.empty();
    }
    String owner = c.get().getKind() + " " + c.get().getName();
    return Optional.of(pod + " belongs to " + owner + switch (c.get().getKind()) {
      case "DaemonSet" -> ", which runs one pod on every node: there is no other node to move it to";
      case "StatefulSet" -> ", whose pods are known by their name: a name cannot pass from a running pod to another,"
          + " and the StatefulSet would re-create a deleted one at once; Ferry does not move StatefulSet pods";
      case "Job" -> ", which counts its pods by uid: a moved pod would be counted as lost; Ferry does not move Job pods";
      default -> ", a controller Ferry does not know how to hand a pod over to (it moves bare pods and ReplicaSets'"
          + " pods only)";
    });
  }
}
