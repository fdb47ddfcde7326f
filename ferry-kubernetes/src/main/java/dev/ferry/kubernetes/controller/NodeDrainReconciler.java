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
 * {@code maxParallel} running at once, started in name order; pods Ferry does not move (DaemonSet
 * and static pods, StatefulSet and Job pods, see {@link PodOwnership}) are skipped with the reason. Looks again every half second until every pod's
 * migration ended.
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
    long running = mine.stream().filter(pm -> pm.getStatus() == null || !pm.getStatus().ended()).count();
    for (Pod p : pods) {
      NodeDrainStatus.PodEntry e = new NodeDrainStatus.PodEntry();
      e.namespace = p.getMetadata().getNamespace();
      e.name = p.getMetadata().getName();
      st.pods.add(e);
      Optional<String> why = unmovable(p);
      if (why.isPresent()) {
        e.phase = "Skipped";
        e.reason = why.get();
        st.skipped++;
        continue;
      }
      String pmName = "drain-" + node + "-" + e.name;
      Optional<PodMigration> pm = mine.stream().filter(m -> m.getMetadata().getName().equals(pmName)
          && m.getMetadata().getNamespace().equals(e.namespace)).findFirst();
      e.migration = pmName;
      if (pm.isEmpty()) {
        if (running < parallel) {
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
    // pods that already moved off the node are no longer listed on it: count their migrations
    for (PodMigration pm : mine) {
      boolean listed = st.pods.stream().anyMatch(e -> pm.getMetadata().getName().equals(e.migration));
      if (!listed && pm.getStatus() != null && "Succeeded".equals(pm.getStatus().phase)) {
        st.migrated++;
      }
    }
    st.phase = st.remaining > 0 ? "Draining" : st.failed > 0 ? "Failed" : "Drained";
    nd.setStatus(st);
    UpdateControl<NodeDrain> u = UpdateControl.patchStatus(nd);
    return st.remaining > 0 ? u.rescheduleAfter(Duration.ofMillis(500)) : u;
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
