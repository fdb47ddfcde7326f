package dev.ferry.kubernetes.controller;

import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodIP;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The placeholder: the Pod, created through the API like any other, that a moving pod is
 * restored into on the target node ("blank birth" in the talk). What it copies and why:
 *
 * <ul>
 *   <li>The spec, so that after the move the Pod says what the source's said (containers,
 *       volumes, probes, resources, tolerations, priority class); with {@code nodeName} the
 *       target (the scheduler is not asked), the source's hostname kept, and the fields the
 *       API server's admission fills in itself (priority, preemption policy, overhead) or
 *       refuses on create (ephemeral containers, scheduling gates with a node name) left out.
 *   <li>No labels of the source: while the pod moves, no ReplicaSet may adopt the placeholder
 *       (it would scale a replica down) and no Service may send it traffic (two pods would answer
 *       for one). Its only label is {@link #FOR_LABEL}; the source's labels and owner references
 *       wait in annotations ({@link #LABELS_ANNOTATION}, {@link #OWNERS_ANNOTATION}) for the
 *       commit point, so that a restarted controller can finish the hand-over from the
 *       placeholder alone.
 *   <li>The source's annotations, except those a CNI, IPAM, kubelet or Ferry wrote about the
 *       source itself (Calico's, Kube-OVN's, Multus' status, the mirror and config ones, the
 *       deletion cost): copied to the new pod they would describe the wrong sandbox.
 *   <li>With a static-IP annotation configured, the source's IPs under it: a JSON list for
 *       Calico's {@code cni.projectcalico.org/ipAddrs}, comma-separated otherwise (Kube-OVN's
 *       {@code ovn.kubernetes.io/ip_address}).
 * </ul>
 */
final class PlaceholderPod {
  /** Label on the placeholder while the pod moves: the source pod's uid. */
  static final String FOR_LABEL = "ferry.dev/placeholder-for";
  /** Annotation: {@code <source uid>/<PodMigration name>}. */
  static final String FOR_ANNOTATION = "ferry.dev/placeholder-for";
  /** Annotation: the source's name, the Pod object the hand-over deletes. */
  static final String SOURCE_ANNOTATION = "ferry.dev/source-pod";
  /** Annotation: the source's labels (JSON), given to the placeholder at the commit point. */
  static final String LABELS_ANNOTATION = "ferry.dev/labels-at-commit";
  /** Annotation: the source's owner references (JSON), given to the placeholder at the commit point. */
  static final String OWNERS_ANNOTATION = "ferry.dev/owners-at-commit";

  /** Annotations written about one pod's sandbox or network by the node's components, not copied. */
  private static final List<String> NOT_COPIED = List.of("cni.projectcalico.org/", "ovn.kubernetes.io/",
      "k8s.v1.cni.cncf.io/network-status", "k8s.v1.cni.cncf.io/networks-status", "kubernetes.io/config.", "ferry.dev/",
      "controller.kubernetes.io/pod-deletion-cost");

  private PlaceholderPod() {}

  /**
   * The placeholder's name: the source's with {@code -ferry-} and five characters of the
   * migration's uid, so that every reconcile of one migration finds the same pod.
   */
  static String name(String sourceName, String migrationUid) {
    String suffix = "-ferry-" + migrationUid.replace("-", "").substring(0, 5).toLowerCase();
    String base = sourceName.length() + suffix.length() > 253 ? sourceName.substring(0, 253 - suffix.length()) : sourceName;
    return base + suffix;
  }

  /**
   * The placeholder for {@code source} on {@code targetNode}, named {@code name}, for the
   * PodMigration {@code migration}; {@code ipAnnotation} null for no static IP.
   *
   * @throws IllegalArgumentException when a static IP is asked for and the source has none in its status
   */
  static Pod build(Pod source, String name, String targetNode, String migration, String ipAnnotation) {
    ObjectMeta src = source.getMetadata();
    Map<String, String> annotations = new LinkedHashMap<>();
    if (src.getAnnotations() != null) {
      src.getAnnotations().forEach((k, v) -> {
        if (NOT_COPIED.stream().noneMatch(k::startsWith) && !k.equals(ipAnnotation)) {
          annotations.put(k, v);
        }
      });
    }
    annotations.put(FOR_ANNOTATION, src.getUid() + "/" + migration);
    annotations.put(SOURCE_ANNOTATION, src.getName());
    annotations.put(LABELS_ANNOTATION, Serialization.asJson(src.getLabels() == null ? Map.of() : src.getLabels()));
    annotations.put(OWNERS_ANNOTATION, Serialization.asJson(src.getOwnerReferences()));
    if (ipAnnotation != null) {
      annotations.put(ipAnnotation, ipValue(ipAnnotation, ips(source)));
    }
    Pod p = new Pod();
    p.setApiVersion("v1");
    p.setKind("Pod");
    ObjectMeta m = new ObjectMeta();
    m.setName(name);
    m.setNamespace(src.getNamespace());
    m.setLabels(Map.of(FOR_LABEL, src.getUid()));
    m.setAnnotations(annotations);
    p.setMetadata(m);
    PodSpec spec = Serialization.unmarshal(Serialization.asJson(source.getSpec()), PodSpec.class);
    spec.setNodeName(targetNode);
    spec.setPriority(null);
    spec.setPreemptionPolicy(null);
    spec.setOverhead(null);
    spec.setEphemeralContainers(null);
    spec.setSchedulingGates(null);
    if (spec.getHostname() == null && src.getName().length() <= 63) {
      spec.setHostname(src.getName()); // what the app saw as its host name on the source
    }
    p.setSpec(spec);
    return p;
  }

  /** The source's IPs from its status, IPv4 and IPv6 for a dual-stack pod. */
  static List<String> ips(Pod source) {
    var st = source.getStatus();
    List<String> ips = st == null ? List.of() : st.getPodIPs() != null && !st.getPodIPs().isEmpty()
        ? st.getPodIPs().stream().map(PodIP::getIp).toList()
        : st.getPodIP() != null ? List.of(st.getPodIP()) : List.of();
    if (ips.isEmpty()) {
      throw new IllegalArgumentException("pod " + source.getMetadata().getNamespace() + "/" + source.getMetadata().getName()
          + " has no IP in its status yet, so the placeholder cannot ask for it");
    }
    return ips;
  }

  /** How an annotation wants its IPs: Calico a JSON list, Kube-OVN (and others) comma-separated. */
  static String ipValue(String annotation, List<String> ips) {
    return annotation.startsWith("cni.projectcalico.org/") ? Serialization.asJson(ips) : String.join(",", ips);
  }

  /** The labels the placeholder takes at the commit point. */
  @SuppressWarnings("unchecked")
  static Map<String, String> labelsAtCommit(Pod placeholder) {
    String json = placeholder.getMetadata().getAnnotations().get(LABELS_ANNOTATION);
    return json == null ? Map.of() : Serialization.unmarshal(json, Map.class);
  }

  /** The owner references the placeholder takes at the commit point. */
  static List<OwnerReference> ownersAtCommit(Pod placeholder) {
    String json = placeholder.getMetadata().getAnnotations().get(OWNERS_ANNOTATION);
    return json == null ? List.of() : List.of(Serialization.unmarshal(json, OwnerReference[].class));
  }

  /** The uid of the pod {@code placeholder} stands in for (or stood in for: kept after the commit); null if none. */
  static String sourceUid(Pod placeholder) {
    Map<String, String> a = placeholder.getMetadata().getAnnotations();
    String v = a == null ? null : a.get(FOR_ANNOTATION);
    return v == null ? null : v.substring(0, v.indexOf('/') < 0 ? v.length() : v.indexOf('/'));
  }
}
