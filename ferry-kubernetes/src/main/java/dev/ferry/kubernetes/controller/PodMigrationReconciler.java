package dev.ferry.kubernetes.controller;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.kubernetes.model.MigrationPolicy;
import dev.ferry.kubernetes.model.MigrationPolicyStatus;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Instant;
import java.util.Comparator;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * Drives a {@link PodMigration}: resolves the pod, the target node and the policy, records
 * them in status ("Pending") before it starts anything, then hands the migration to the
 * {@link MigrationEngine} and writes every phase and the outcome to status as the engine reports
 * them, with an Event each. Cancel (spec.cancel, or deleting the resource) stops the migration
 * before its commit point. A controller that restarts finds migrations that were running in
 * their status and has the engine finish or roll them back.
 *
 * <p>With an engine that restores into Pods ({@link MigrationEngine#restoresIntoPods()}) the
 * migration has Pod objects too: a placeholder Pod created through the API on the target node
 * before the engine starts ({@link PlaceholderPod}), deleted again when the migration rolls back,
 * and given the source's place when it succeeds ({@link PodHandover#commit}). Pods whose owner
 * Ferry cannot hand over to a new pod are refused before anything starts ({@link PodOwnership}).
 */
@ControllerConfiguration(name = "podmigration")
public class PodMigrationReconciler implements Reconciler<PodMigration>, Cleaner<PodMigration> {
  private static final Logger LOG = LoggerFactory.getLogger(PodMigrationReconciler.class);
  private final KubernetesClient client;
  private final MigrationEngine engine;
  private final Events events;
  private final HandoverSettings settings;
  private final PodHandover pods;
  /**
   * Migrations this controller asked the engine to start, until they end (by namespace/name):
   * a reconcile that still sees no id in status (the engine has none yet, or the cache has not
   * caught up with the status write) must neither start the engine again nor take the
   * migration for one that never started.
   */
  private final Map<String, Starting> starting = new java.util.concurrent.ConcurrentHashMap<>();

  /** A start on its way: the engine's id once it has one, and whether a cancel came first. */
  private static final class Starting {
    volatile String migrationId;
    volatile boolean cancel;
  }

  public PodMigrationReconciler(KubernetesClient client, MigrationEngine engine) {
    this(client, engine, HandoverSettings.defaults());
  }

  public PodMigrationReconciler(KubernetesClient client, MigrationEngine engine, HandoverSettings settings) {
    this.client = client;
    this.engine = engine;
    this.events = new Events(client);
    this.settings = settings;
    this.pods = new PodHandover(client, settings.readyTimeout());
  }

  @Override
  public UpdateControl<PodMigration> reconcile(PodMigration pm, Context<PodMigration> context) {
    PodMigrationStatus st = pm.getStatus();
    if (st != null && st.ended()) {
      return UpdateControl.noUpdate();
    }
    if (st == null || st.phase == null) {
      PodMigration planned = plan(pm);
      // written first; the next reconcile (at once) starts the migration. A status change alone
      // does not trigger one.
      return planned.getStatus().ended() ? UpdateControl.patchStatus(planned)
          : UpdateControl.patchStatus(planned).rescheduleAfter(java.time.Duration.ofMillis(1));
    }
    if (st.migrationId == null) {
      Starting s = starting.get(key(pm));
      if (s != null) {
        // started: its id is on its way to status; a cancel goes to the engine (once it has an id)
        if (pm.getSpec().cancel) {
          s.cancel = true;
          if (s.migrationId != null) {
            engine.cancel(s.migrationId);
          }
        }
        return UpdateControl.noUpdate();
      }
      if (pm.getSpec().cancel) {
        st.phase = MigrationPhase.ROLLED_BACK.displayName();
        st.failureReason = "cancelled before it started";
        st.finishedAt = Instant.now().toString();
        deletePlaceholder(pm);
        events.record(pm, "Cancelled", st.failureReason);
        return UpdateControl.patchStatus(pm);
      }
      return start(pm);
    }
    MDC.put("migration", st.migrationId);
    try {
      if (!engine.drives(st.migrationId)) {
        // the controller restarted while it ran: finish or roll back, or look again later
        return recover(pm, st.migrationId) ? UpdateControl.noUpdate()
            : UpdateControl.<PodMigration>noUpdate().rescheduleAfter(java.time.Duration.ofSeconds(5));
      } else if (pm.getSpec().cancel) {
        LOG.info("cancel of {} requested", st.migrationId);
        engine.cancel(st.migrationId);
      }
    } finally {
      MDC.remove("migration");
    }
    return UpdateControl.noUpdate();
  }

  @Override
  public DeleteControl cleanup(PodMigration pm, Context<PodMigration> context) {
    PodMigrationStatus st = pm.getStatus();
    if (st != null && st.migrationId != null && !st.ended()) {
      LOG.info("PodMigration {} deleted: cancelling {}", pm.getMetadata().getName(), st.migrationId);
      engine.cancel(st.migrationId); // its end deletes the placeholder
    } else if (st != null && !st.ended()) {
      deletePlaceholder(pm);
    }
    return DeleteControl.defaultDelete();
  }

  /** Resolves pod, nodes and policy into status; fails the migration with the reason when one is missing. */
  private PodMigration plan(PodMigration pm) {
    String ns = pm.getMetadata().getNamespace();
    PodMigrationStatus st = new PodMigrationStatus();
    pm.setStatus(st);
    st.observedGeneration = pm.getMetadata().getGeneration();
    st.startedAt = Instant.now().toString();
    Pod pod = client.pods().inNamespace(ns).withName(pm.getSpec().podName).get();
    if (pod == null || pod.getSpec().getNodeName() == null) {
      return fail(pm, "pod " + ns + "/" + pm.getSpec().podName + (pod == null ? " does not exist" : " is not scheduled"));
    }
    st.sourceNode = pod.getSpec().getNodeName();
    Optional<String> refused = PodOwnership.refusal(pod);
    if (refused.isPresent()) {
      return fail(pm, refused.get());
    }
    Optional<String> target = targetNode(pm, st.sourceNode);
    if (target.isEmpty()) {
      return fail(pm, pm.getSpec().targetNode != null
          ? "target node " + pm.getSpec().targetNode + " does not exist or is the pod's own node"
          : "no node other than " + st.sourceNode + " matches nodeSelector " + pm.getSpec().nodeSelector);
    }
    st.targetNode = target.get();
    Namespace namespace = client.namespaces().withName(ns).get();
    Map<String, String> nsLabels = namespace == null ? Map.of() : namespace.getMetadata().getLabels();
    Optional<MigrationPolicy> policy = PolicySelector.select(client.resources(MigrationPolicy.class).list().getItems(),
        pod.getMetadata().getLabels(), nsLabels);
    PolicySelector.Effective e = PolicySelector.merge(pm.getSpec(), policy);
    st.strategy = e.strategy();
    st.policy = e.policy();
    if (engine.restoresIntoPods()) {
      Optional<String> unfit = planPlaceholder(pm, pod, e);
      if (unfit.isPresent()) {
        return fail(pm, unfit.get());
      }
    }
    st.phase = MigrationPhase.PENDING.displayName();
    policy.ifPresent(p -> markApplied(p, pm));
    events.record(pm, "Pending", "moving pod " + pod.getMetadata().getName() + " from " + st.sourceNode + " to "
        + st.targetNode + " (" + e.strategy() + (e.policy() != null ? ", policy " + e.policy() : "") + ")");
    return pm;
  }

  /**
   * Names the placeholder and the static-IP annotation it gets (the policy's, else the
   * controller's) in status, before anything is created; why the pod cannot have one if it cannot.
   */
  private Optional<String> planPlaceholder(PodMigration pm, Pod pod, PolicySelector.Effective e) {
    PodMigrationStatus st = pm.getStatus();
    Map<String, String> wanted = pod.getSpec().getNodeSelector();
    Node target = client.nodes().withName(st.targetNode).get();
    if (wanted != null && !PolicySelector.matches(wanted, target == null ? Map.of() : target.getMetadata().getLabels())) {
      return Optional.of("target node " + st.targetNode + " lacks the labels of pod " + pod.getMetadata().getName()
          + "'s nodeSelector " + wanted + ": its kubelet would refuse the placeholder");
    }
    String ip = settings.ipAnnotationFor(e.podIpAnnotation());
    if (ip != null) {
      try {
        PlaceholderPod.ips(pod);
      } catch (IllegalArgumentException ex) {
        return Optional.of(ex.getMessage() + " (" + ip + ")");
      }
    }
    String uid = pm.getMetadata().getUid() != null ? pm.getMetadata().getUid()
        : java.util.UUID.nameUUIDFromBytes(pm.getMetadata().getName().getBytes()).toString();
    st.placeholder = PlaceholderPod.name(pod.getMetadata().getName(), uid);
    st.podIpAnnotation = ip;
    return Optional.empty();
  }

  private Optional<String> targetNode(PodMigration pm, String source) {
    String wanted = pm.getSpec().targetNode;
    if (wanted != null) {
      return wanted.equals(source) || client.nodes().withName(wanted).get() == null ? Optional.empty() : Optional.of(wanted);
    }
    return client.nodes().list().getItems().stream()
        .filter(n -> !n.getMetadata().getName().equals(source))
        .filter(n -> PolicySelector.matches(pm.getSpec().nodeSelector, n.getMetadata().getLabels()))
        .map(Node::getMetadata).map(m -> m.getName()).min(Comparator.naturalOrder());
  }

  private PodMigration fail(PodMigration pm, String why) {
    pm.getStatus().phase = MigrationPhase.FAILED.displayName();
    pm.getStatus().failureReason = why;
    pm.getStatus().finishedAt = Instant.now().toString();
    events.record(pm, "Failed", why);
    return pm;
  }

  private void markApplied(MigrationPolicy p, PodMigration pm) {
    try {
      client.resource(p).editStatus(x -> {
        if (x.getStatus() == null) {
          x.setStatus(new MigrationPolicyStatus());
        }
        x.getStatus().lastAppliedTo = pm.getMetadata().getNamespace() + "/" + pm.getMetadata().getName();
        return x;
      });
    } catch (RuntimeException ex) {
      LOG.debug("cannot note on policy {}: {}", p.getMetadata().getName(), ex.getMessage());
    }
  }

  /** Creates the placeholder (if the engine restores into Pods), then starts the engine. */
  private UpdateControl<PodMigration> start(PodMigration pm) {
    PodMigrationStatus st = pm.getStatus();
    // the policy chosen when the migration was planned (named in status) gives what the spec leaves open
    Optional<MigrationPolicy> policy = st.policy == null ? Optional.empty()
        : Optional.ofNullable(client.resources(MigrationPolicy.class).withName(st.policy).get());
    PolicySelector.Effective e = PolicySelector.merge(pm.getSpec(), policy);
    MigrationEngine.Placeholder placeholder = null;
    if (engine.restoresIntoPods() && st.placeholder != null) {
      String ns = pm.getMetadata().getNamespace();
      try {
        Pod source = client.pods().inNamespace(ns).withName(pm.getSpec().podName).get();
        if (source == null) {
          return UpdateControl.patchStatus(fail(pm, "pod " + ns + "/" + pm.getSpec().podName + " is gone"));
        }
        Pod p = pods.createPlaceholder(PlaceholderPod.build(source, st.placeholder, st.targetNode,
            pm.getMetadata().getName(), st.podIpAnnotation));
        placeholder = new MigrationEngine.Placeholder(p.getMetadata().getName(), p.getMetadata().getUid());
      } catch (RuntimeException ex) {
        deletePlaceholder(pm);
        return UpdateControl.patchStatus(fail(pm, "cannot create the placeholder pod " + ns + "/" + st.placeholder
            + " on " + st.targetNode + ": " + ex.getMessage() + "; nothing was frozen, the source runs as before"));
      }
      events.record(pm, "PlaceholderCreated", "pod " + st.placeholder + " on " + st.targetNode + " to restore "
          + pm.getSpec().podName + " into" + (st.podIpAnnotation != null ? ", asking for its IP by " + st.podIpAnnotation
          : "; it gets a new IP (no static-IP annotation): Services follow the labels it takes at the commit point"));
    }
    MigrationEngine.Request r = new MigrationEngine.Request(pm.getMetadata().getNamespace(), pm.getSpec().podName,
        st.sourceNode, st.targetNode, st.strategy, e.maxFreezeMs(), e.bandwidthMBps(), e.allowPostcopy(), placeholder);
    starting.put(key(pm), new Starting());
    try {
      engine.start(r, new StatusListener(pm));
    } catch (RuntimeException ex) {
      starting.remove(key(pm));
      throw ex;
    }
    return UpdateControl.noUpdate();
  }

  private static String key(PodMigration pm) {
    return pm.getMetadata().getNamespace() + "/" + pm.getMetadata().getName();
  }

  /** The undo of the placeholder's creation: deletes it if it is still one (idempotent). */
  private boolean deletePlaceholder(PodMigration pm) {
    String name = pm.getStatus() == null ? null : pm.getStatus().placeholder;
    if (name == null || !engine.restoresIntoPods()) {
      return false;
    }
    try {
      return pods.deletePlaceholder(pm.getMetadata().getNamespace(), name, pm.getMetadata().getName());
    } catch (RuntimeException e) {
      LOG.warn("cannot delete the placeholder {}: {}", name, e.getMessage());
      events.record(pm, "Failed", "cannot delete the placeholder pod " + name + ": " + e.getMessage()
          + "; delete it by hand (the source runs as before)");
      return false;
    }
  }

  /** Returns false when the migration could not be finished yet. */
  private boolean recover(PodMigration pm, String migrationId) {
    LOG.info("migration {} was running when the controller stopped: recovering it", migrationId);
    events.record(pm, "Recovering", "the controller restarted during " + pm.getStatus().phase + "; finishing or"
        + " rolling back " + migrationId);
    Optional<MigrationReport> report = engine.recover(migrationId);
    StatusListener l = new StatusListener(pm);
    if (report.isPresent() && MigrationEngine.UNFINISHED.equals(report.get().outcome)) {
      l.write(st -> st.failureReason = "recovery waits for a host: " + report.get().error);
      return false;
    }
    if (report.isPresent()) {
      l.ended(migrationId, report.get());
    } else {
      l.write(st -> {
        st.phase = MigrationPhase.FAILED.displayName();
        st.failureReason = "the controller restarted and the engine has no record of " + migrationId;
        st.finishedAt = Instant.now().toString();
      });
    }
    return true;
  }

  /** Writes what the engine reports into the PodMigration's status, with an Event per phase. */
  private final class StatusListener implements MigrationEngine.Listener {
    private final PodMigration pm;

    StatusListener(PodMigration pm) {
      this.pm = pm;
    }

    void write(Consumer<PodMigrationStatus> change) {
      try {
        client.resources(PodMigration.class).inNamespace(pm.getMetadata().getNamespace())
            .withName(pm.getMetadata().getName()).editStatus(cur -> {
              if (cur.getStatus() == null) {
                cur.setStatus(new PodMigrationStatus());
              }
              change.accept(cur.getStatus());
              return cur;
            });
      } catch (RuntimeException e) {
        LOG.warn("cannot write the status of PodMigration {}: {}", pm.getMetadata().getName(), e.getMessage());
      }
    }

    @Override
    public void started(String migrationId) {
      write(st -> {
        st.migrationId = migrationId;
        st.phase = MigrationPhase.PREPARING.displayName();
      });
      Starting s = starting.get(key(pm));
      if (s != null) {
        s.migrationId = migrationId;
        if (s.cancel) {
          LOG.info("cancel of {} requested before its id reached status", migrationId);
          engine.cancel(migrationId);
        }
      }
    }

    @Override
    public void phase(String migrationId, MigrationPhase phase, String what) {
      if (phase.isFinal()) {
        return; // ended() writes the final phase together with the outcome's details
      }
      write(st -> {
        st.migrationId = migrationId;
        st.phase = phase.displayName();
      });
      events.record(pm, phase.displayName(), what);
    }

    @Override
    public void progress(String migrationId, long bytes, double rate, int round, double dirtyRate, long predictedFreezeMs) {
      write(st -> {
        PodMigrationStatus.Progress p = new PodMigrationStatus.Progress();
        p.bytes = bytes;
        p.bytesPerSecond = (long) rate;
        p.round = round > 0 ? round : null;
        p.dirtyBytesPerSecond = round > 0 ? (long) dirtyRate : null;
        p.predictedFreezeMs = predictedFreezeMs > 0 ? predictedFreezeMs : null;
        st.progress = p;
      });
    }

    @Override
    public void ended(String migrationId, MigrationReport r) {
      starting.remove(key(pm));
      podObjects(r);
      MigrationPhase end = "migrated".equals(r.outcome) ? MigrationPhase.SUCCEEDED
          : "rolled-back".equals(r.outcome) ? MigrationPhase.ROLLED_BACK : MigrationPhase.FAILED;
      write(st -> {
        st.migrationId = migrationId != null ? migrationId : st.migrationId;
        st.phase = end.displayName();
        st.frozenMs = r.frozenMs;
        st.downtimeMs = r.downtimeMs;
        st.strategy = r.strategy != null ? r.strategy : st.strategy;
        st.failureReason = r.error;
        st.finishedAt = Instant.now().toString();
      });
      events.record(pm, end.displayName(), r.error != null ? r.error : "pod " + pm.getSpec().podName + " runs on "
          + r.targetHost + (r.frozenMs != null ? ", frozen " + r.frozenMs + " ms" : ""));
    }

    /**
     * What the end means for the Pod objects: on success the placeholder takes the source's place
     * (a failed hand-over turns the outcome into "failed", saying what is left); rolled back, the
     * placeholder is deleted and the source left as it was; failed (the engine could neither
     * finish nor roll back), the placeholder is left, as it may hold the pod.
     */
    private void podObjects(MigrationReport r) {
      PodMigrationStatus st = pm.getStatus();
      if (!engine.restoresIntoPods() || st == null || st.placeholder == null) {
        return;
      }
      String ns = pm.getMetadata().getNamespace();
      if ("migrated".equals(r.outcome)) {
        events.record(pm, "HandingOver", "pod " + st.placeholder + " takes the place of " + pm.getSpec().podName);
        try {
          pods.commit(ns, st.placeholder);
          events.record(pm, "HandedOver", "pod " + st.placeholder + " has the labels and owners of " + pm.getSpec().podName
              + ", whose Pod object is deleted");
        } catch (RuntimeException e) {
          LOG.error("hand-over to {} failed: {}", st.placeholder, e.getMessage());
          r.outcome = "failed";
          r.error = "the pod moved (past the commit point) but the hand-over of its Pod objects failed: " + e.getMessage();
        }
      } else if ("rolled-back".equals(r.outcome)) {
        if (deletePlaceholder(pm)) {
          events.record(pm, "PlaceholderDeleted", "pod " + st.placeholder + " deleted; " + pm.getSpec().podName
              + " runs on " + st.sourceNode + " as before");
        }
      } else {
        r.error = (r.error != null ? r.error + "; " : "") + "the placeholder pod " + st.placeholder + " on "
            + st.targetNode + " is left as it is: it may hold the pod";
      }
    }
  }
}
