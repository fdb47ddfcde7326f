package dev.ferry.kubernetes.controller;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.kubernetes.model.PodMigration;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in for the agents behind the engine boundary: walks a migration through Ferry's
 * phases (or fails it, or waits for a cancel), and notes, at each phase, what the PodMigration's
 * status said once the phase was reported: the controller must have written it by then. Like a
 * node's agent under its kubelet, it restores into the placeholder Pod it is given: it checks in
 * Preparing that the Pod is there (by name and uid), and in Restoring marks it Running and Ready,
 * as the kubelet would once the restored app answers its readiness probe.
 */
final class FakeEngine implements MigrationEngine {
  static final List<MigrationPhase> PHASES = List.of(MigrationPhase.PREPARING, MigrationPhase.DUMPING,
      MigrationPhase.TRANSFERRING, MigrationPhase.RESTORING, MigrationPhase.CUTOVER);

  private final KubernetesClient client;
  /** Pods whose migration fails in Transferring (the source resumes: rolled back). */
  final Set<String> failing = ConcurrentHashMap.newKeySet();
  /** Pods whose migration waits in Transferring until cancelled. */
  final Set<String> waitingForCancel = ConcurrentHashMap.newKeySet();
  /** Migration ids a previous controller started, and how they end when recovered. */
  final Map<String, String> recoverable = new ConcurrentHashMap<>();
  final List<String> statusSeen = new CopyOnWriteArrayList<>();
  /** The pods whose migration this engine was asked to start, in order. */
  final List<String> startedPods = new CopyOnWriteArrayList<>();
  /** Pods whose placeholder the "kubelet" never reports Ready (the restored app fails its readiness probe). */
  final Set<String> neverReady = ConcurrentHashMap.newKeySet();
  /** Every request, in order. */
  final List<Request> requests = new CopyOnWriteArrayList<>();
  final AtomicInteger running = new AtomicInteger();
  final AtomicInteger mostAtOnce = new AtomicInteger();
  private final Map<String, CountDownLatch> cancels = new ConcurrentHashMap<>();
  private final AtomicInteger ids = new AtomicInteger();
  volatile long phaseMillis = 20;
  /** How long the engine takes to get a migration id (the status has none meanwhile). */
  volatile long startMillis = 0;

  FakeEngine(KubernetesClient client) {
    this.client = client;
  }

  @Override
  public boolean restoresIntoPods() {
    return true;
  }

  @Override
  public void start(Request r, Listener l) {
    startedPods.add(r.pod());
    requests.add(r);
    String id = "m-fake-" + ids.incrementAndGet();
    cancels.put(id, new CountDownLatch(1));
    Thread t = new Thread(() -> run(id, r, l), "fake-engine-" + id);
    t.setDaemon(true);
    t.start();
  }

  private void run(String id, Request r, Listener l) {
    mostAtOnce.accumulateAndGet(running.incrementAndGet(), Math::max);
    try {
      Thread.sleep(startMillis);
      l.started(id);
      for (MigrationPhase p : PHASES) {
        l.phase(id, p, p.displayName() + " " + r.pod());
        statusSeen.add(r.pod() + ":" + statusPhase(r));
        if (p == MigrationPhase.PREPARING && r.placeholder() != null && !placeholderThere(r)) {
          l.ended(id, report(r, "rolled-back", "failed in phase Preparing: agent " + r.targetNode() + ": no placeholder pod "
              + r.placeholder().name() + " with uid " + r.placeholder().uid() + "; rolled back, source resumed"));
          return;
        }
        if (p == MigrationPhase.RESTORING && r.placeholder() != null && !neverReady.contains(r.pod())) {
          client.pods().inNamespace(r.namespace()).withName(r.placeholder().name()).subresource("status")
              .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"status\":{\"phase\":\"Running\",\"conditions\":"
                  + "[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
        }
        if (p == MigrationPhase.TRANSFERRING) {
          l.progress(id, 1 << 20, 5e8, 0, 0, 0);
          if (failing.contains(r.pod())) {
            l.ended(id, report(r, "rolled-back", "failed in phase Transferring (step transfer): agent " + r.targetNode()
                + ": connection reset; rolled back, source resumed"));
            return;
          }
          if (waitingForCancel.contains(r.pod())) {
            cancels.get(id).await(30, TimeUnit.SECONDS);
            l.ended(id, report(r, "rolled-back", "cancelled in phase Transferring; rolled back, source resumed"));
            return;
          }
        }
        Thread.sleep(phaseMillis);
      }
      MigrationReport rep = report(r, "migrated", null);
      rep.frozenMs = 120L;
      l.ended(id, rep);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      running.decrementAndGet();
    }
  }

  private boolean placeholderThere(Request r) {
    Pod p = client.pods().inNamespace(r.namespace()).withName(r.placeholder().name()).get();
    return p != null && p.getMetadata().getUid().equals(r.placeholder().uid())
        && r.targetNode().equals(p.getSpec().getNodeName());
  }

  private String statusPhase(Request r) {
    return client.resources(PodMigration.class).inNamespace(r.namespace()).list().getItems().stream()
        .filter(pm -> pm.getSpec().podName.equals(r.pod()) && pm.getStatus() != null)
        .map(pm -> pm.getStatus().phase).findFirst().orElse("none");
  }

  private static MigrationReport report(Request r, String outcome, String error) {
    MigrationReport rep = new MigrationReport();
    rep.outcome = outcome;
    rep.error = error;
    rep.strategy = r.strategy().equals("auto") ? "cold" : r.strategy();
    rep.sourceHost = r.sourceNode();
    rep.targetHost = r.targetNode();
    return rep;
  }

  @Override
  public void cancel(String migrationId) {
    CountDownLatch c = cancels.get(migrationId);
    if (c != null) {
      c.countDown();
    }
  }

  @Override
  public boolean drives(String migrationId) {
    return cancels.containsKey(migrationId);
  }

  @Override
  public Optional<MigrationReport> recover(String migrationId) {
    String outcome = recoverable.remove(migrationId);
    if (outcome == null) {
      return Optional.empty();
    }
    MigrationReport rep = new MigrationReport();
    rep.outcome = outcome;
    rep.error = outcome.equals("rolled-back") ? "interrupted\nrecovered: rolled back, source resumed" : null;
    return Optional.of(rep);
  }
}
