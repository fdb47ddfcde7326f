package dev.ferry.kubernetes.controller;

import dev.ferry.kubernetes.model.NodeDrain;
import dev.ferry.kubernetes.model.NodeDrainStatus;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Empties a node: one {@link PodMigration} (owned by the NodeDrain) per pod on it, at most
 * {@code maxParallel} running at once, started in name order. Pods Ferry does not move (see
 * {@link PodOwnership}) follow {@code spec.unmigratable}: {@code skip} (default) leaves them with
 * the reason; {@code evict} evicts them through the Eviction API as {@code kubectl drain} would
 * (honouring PodDisruptionBudgets: a refused eviction is tried again), except the node's own pods
 * (DaemonSet, static) and Ferry's placeholders, which are skipped; {@code block} starts no
 * migration while any such pod is on the node and says which ones block. Looks again every half
 * second until every pod's migration ended.
 */
@ControllerConfiguration(name = "nodedrain")
public class NodeDrainReconciler implements Reconciler<NodeDrain> {
  private static final Logger LOG = LoggerFactory.getLogger(NodeDrainReconciler.class);
  static final String DRAIN_LABEL = "ferry.dev/drain";
  private final KubernetesClient client;

  public NodeDrainReconciler(KubernetesClient client) {
    this.client = client;
  }

  @Override
  public UpdateControl<NodeDrain> reconcile(NodeDrain nd, Context<NodeDrain> context) {
    if (nd.getStatus() != null && List.of("Drained", "Failed").contains(nd.getStatus().phase)) {
      return UpdateControl.noUpdate();
    }
    String node = nd.getSpec().nodeName;
    int parallel = nd.getSpec().maxParallel == null ? 1 : nd.getSpec().maxParallel;
    List<Pod> pods = client.pods().inAnyNamespace().list().getItems().stream()
        .filter(p -> node.equals(p.getSpec().getNodeName()))
        .filter(p -> PolicySelector.matches(nd.getSpec().podSelector, p.getMetadata().getLabels()))
        .sorted(Comparator.comparing((Pod p) -> p.getMetadata().getNamespace()).thenComparing(p -> p.getMetadata().getName()))
        .toList();
    List<PodMigration> mine = client.resources(PodMigration.class).inAnyNamespace()
        .withLabel(DRAIN_LABEL, nd.getMetadata().getName()).list().getItems();
    NodeDrainStatus st = new NodeDrainStatus();
    java.util.Set<String> evictedBefore = new java.util.HashSet<>();
    if (nd.getStatus() != null) {
      nd.getStatus().pods.stream().filter(e -> "Evicting".equals(e.phase) || "Evicted".equals(e.phase))
          .forEach(e -> evictedBefore.add(e.namespace + "/" + e.name));
    }
    String unmigratable = nd.getSpec().unmigratable == null ? "skip" : nd.getSpec().unmigratable;
    boolean blocked = "block".equals(unmigratable) && pods.stream().anyMatch(p -> unmovable(p).isPresent());
    long running = mine.stream().filter(pm -> pm.getStatus() == null || !pm.getStatus().ended()).count();
    for (Pod p : pods) {
      NodeDrainStatus.PodEntry e = new NodeDrainStatus.PodEntry();
      e.namespace = p.getMetadata().getNamespace();
      e.name = p.getMetadata().getName();
      st.pods.add(e);
      Optional<String> why = unmovable(p);
      if (why.isPresent()) {
        e.reason = why.get();
        if (blocked) {
          e.phase = "Blocking";
          st.remaining++;
        } else if ("evict".equals(unmigratable) && evictable(p)) {
          if (evictedBefore.contains(e.namespace + "/" + e.name)) {
            e.phase = "Evicting"; // accepted already: on its way out, not asked twice
          } else {
            evict(nd, p, e);
          }
          st.remaining++; // until it is gone from the node, as kubectl drain waits
        } else {
          e.phase = "Skipped";
          st.skipped++;
        }
        continue;
      }
      String pmName = "drain-" + node + "-" + e.name;
      Optional<PodMigration> pm = mine.stream().filter(m -> m.getMetadata().getName().equals(pmName)
          && m.getMetadata().getNamespace().equals(e.namespace)).findFirst();
      e.migration = pmName;
      if (pm.isEmpty()) {
        if (blocked) {
          e.phase = "Waiting";
          e.reason = "the drain is blocked by pods Ferry cannot migrate (unmigratable: block)";
        } else if (running < parallel) {
          create(nd, p, pmName);
          running++;
          e.phase = "Pending";
        } else {
          e.phase = "Waiting";
        }
        st.remaining++;
        continue;
      }
      e.phase = pm.get().getStatus() == null ? "Pending" : pm.get().getStatus().phase;
      if ("Succeeded".equals(e.phase)) {
        st.migrated++;
      } else if (pm.get().getStatus() != null && pm.get().getStatus().ended()) {
        st.failed++;
        e.reason = pm.get().getStatus().failureReason;
      } else {
        st.remaining++;
      }
    }
    // pods that already moved off the node are no longer listed on it: count their migrations;
    // one whose pod left at the commit point may still be finishing (cleanup): the drain is not
    // over until it has ended
    for (PodMigration pm : mine) {
      boolean listed = st.pods.stream().anyMatch(e -> pm.getMetadata().getName().equals(e.migration));
      if (listed) {
        continue;
      }
      if (pm.getStatus() != null && "Succeeded".equals(pm.getStatus().phase)) {
        st.migrated++;
      } else if (pm.getStatus() == null || !pm.getStatus().ended()) {
        st.remaining++;
      }
    }
    // evicted pods are gone from the node: their entries stay, so that the count does
    if (nd.getStatus() != null) {
      for (NodeDrainStatus.PodEntry e : nd.getStatus().pods) {
        boolean listed = st.pods.stream().anyMatch(x -> x.namespace.equals(e.namespace) && x.name.equals(e.name));
        if (evictedBefore.contains(e.namespace + "/" + e.name) && !listed) {
          e.phase = "Evicted";
          st.pods.add(e);
          st.evicted++;
        }
      }
    }
    st.phase = blocked ? "Blocked" : st.remaining > 0 ? "Draining" : st.failed > 0 ? "Failed" : "Drained";
    nd.setStatus(st);
    UpdateControl<NodeDrain> u = UpdateControl.patchStatus(nd);
    return st.remaining > 0 ? u.rescheduleAfter(Duration.ofMillis(blocked ? 5000 : 500)) : u;
  }

  /**
   * Whether {@code unmigratable: evict} evicts this pod: not the node's own (a DaemonSet's, which
   * would come back on the same node, or a static pod, which the API cannot remove) and not a
   * Ferry placeholder (evicting it would break a migration in progress), as {@code kubectl drain
   * --ignore-daemonsets} leaves them.
   */
  static boolean evictable(Pod p) {
    java.util.Map<String, String> a = p.getMetadata().getAnnotations();
    java.util.Map<String, String> l = p.getMetadata().getLabels();
    return !(a != null && a.containsKey("kubernetes.io/config.mirror"))
        && !(l != null && l.containsKey(PlaceholderPod.FOR_LABEL))
        && PodOwnership.controller(p).map(o -> !"DaemonSet".equals(o.getKind())).orElse(true);
  }

  /** Evicts {@code p} through the Eviction API (a PodDisruptionBudget may refuse: tried again on the next look). */
  private void evict(NodeDrain nd, Pod p, NodeDrainStatus.PodEntry e) {
    if (p.getMetadata().getDeletionTimestamp() != null) {
      e.phase = "Evicting"; // on its way out already
      return;
    }
    boolean done;
    try {
      done = client.pods().inNamespace(e.namespace).withName(e.name).evict();
    } catch (RuntimeException ex) {
      e.phase = "EvictionFailed";
      e.reason = "cannot evict: " + ex.getMessage() + " (" + e.reason + ")";
      return;
    }
    if (done) {
      e.phase = "Evicting";
      LOG.info("drain {}: evicted {}/{}, which Ferry cannot migrate", nd.getMetadata().getName(), e.namespace, e.name);
    } else {
      e.phase = "EvictionBlocked";
      e.reason = "a PodDisruptionBudget does not allow evicting it now; tried again (" + e.reason + ")";
    }
  }

  /**
   * Why a pod stays on its node: it belongs to it (a DaemonSet's, a static pod), or its owner is
   * one Ferry does not hand pods over for (a StatefulSet's, a Job's), or it is a placeholder of a
   * migration in progress: the reasons a PodMigration would be refused with ({@link PodOwnership}).
   */
  static Optional<String> unmovable(Pod p) {
    return PodOwnership.refusal(p);
  }

  private void create(NodeDrain nd, Pod p, String name) {
    PodMigration pm = new PodMigration();
    pm.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(p.getMetadata().getNamespace())
        .withLabels(Map.of(DRAIN_LABEL, nd.getMetadata().getName()))
        .withOwnerReferences(new OwnerReferenceBuilder().withApiVersion(nd.getApiVersion()).withKind(nd.getKind())
            .withName(nd.getMetadata().getName()).withUid(nd.getMetadata().getUid()).withController(true).build())
        .build());
    pm.setSpec(new PodMigrationSpec());
    pm.getSpec().podName = p.getMetadata().getName();
    pm.getSpec().nodeSelector = nd.getSpec().nodeSelector;
    client.resource(pm).create();
    LOG.info("drain {}: migrating {}/{}", nd.getMetadata().getName(), p.getMetadata().getNamespace(), p.getMetadata().getName());
  }
}
