package dev.ferry.kubernetes.controller;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.kubernetes.DeployedCrds;
import dev.ferry.kubernetes.model.MigrationPolicy;
import dev.ferry.kubernetes.model.MigrationPolicySpec;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apps.ReplicaSet;
import io.fabric8.kubernetes.api.model.apps.ReplicaSetBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A migration's Pod objects, against the mock API server in CRUD mode with the engine (the
 * agents) faked at its boundary: the placeholder on the target node, its undo on rollback, the
 * hand-over of a ReplicaSet's pod at the commit point, refused owners, and a hand-over a
 * restarted controller finishes. No ReplicaSet controller runs here: {@link ReplicaSetView}
 * computes, from every pod event, what one would count.
 */
@EnableKubernetesMockClient(crud = true)
class PodHandoverTest {
  static final Map<String, String> WEB = Map.of("app", "web", "pod-template-hash", "7d9f8");
  KubernetesClient client;
  FakeEngine engine;
  Operator operator;
  ReplicaSet rs;

  @BeforeEach
  void setUp() throws Exception {
    DeployedCrds.install(client);
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("apps").endMetadata().build()).create();
    for (String n : List.of("node-a", "node-b")) {
      client.nodes().resource(new NodeBuilder().withNewMetadata().withName(n).endMetadata().build()).create();
    }
    rs = client.apps().replicaSets().inNamespace("apps").resource(new ReplicaSetBuilder().withNewMetadata()
        .withName("web-7d9f8").endMetadata().withNewSpec().withReplicas(1).withNewSelector().withMatchLabels(WEB)
        .endSelector().withNewTemplate().withNewMetadata().withLabels(WEB).endMetadata().withNewSpec().addNewContainer()
        .withName("app").withImage("redis:7").endContainer().endSpec().endTemplate().endSpec().build()).create();
    engine = new FakeEngine(client);
    startOperator();
  }

  void startOperator() {
    operator = new Operator(o -> o.withKubernetesClient(client).withCloseClientOnStop(false)
        .withUseSSAToPatchPrimaryResource(false).withSSABasedCreateUpdateMatchForDependentResources(false));
    operator.register(new PodMigrationReconciler(client, engine, new HandoverSettings(null, Duration.ofSeconds(20))));
    operator.start();
  }

  @AfterEach
  void tearDown() {
    operator.stop();
  }

  /** The ReplicaSet's pod on node-a, Running and Ready with an IP, and a user's annotation and one Calico wrote. */
  Pod webPod() {
    OwnerReference owner = new OwnerReferenceBuilder().withApiVersion("apps/v1").withKind("ReplicaSet")
        .withName(rs.getMetadata().getName()).withUid(rs.getMetadata().getUid()).withController(true)
        .withBlockOwnerDeletion(true).build();
    return pod("web-7d9f8-x1", owner);
  }

  Pod pod(String name, OwnerReference owner) {
    Pod p = client.pods().inNamespace("apps").resource(new PodBuilder().withNewMetadata().withName(name)
        .withLabels(WEB).withOwnerReferences(owner)
        .withAnnotations(Map.of("team", "payments", "cni.projectcalico.org/podIP", "10.1.2.3/32")).endMetadata()
        .withNewSpec().withNodeName("node-a").addNewContainer().withName("app").withImage("redis:7").endContainer()
        .endSpec().build()).create();
    return client.pods().inNamespace("apps").withName(name).subresource("status").patch(PatchContext.of(PatchType.JSON_MERGE),
        "{\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.2.3\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
  }

  PodMigration migrate(String name, String pod) {
    PodMigration pm = new PodMigration();
    pm.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace("apps").build());
    pm.setSpec(new PodMigrationSpec());
    pm.getSpec().podName = pod;
    pm.getSpec().targetNode = "node-b";
    return client.resource(pm).create();
  }

  void calicoPolicy() {
    MigrationPolicy p = new MigrationPolicy();
    p.setMetadata(new ObjectMetaBuilder().withName("calico").build());
    p.setSpec(new MigrationPolicySpec());
    p.getSpec().podIpAnnotation = "cni.projectcalico.org/ipAddrs";
    client.resource(p).create();
  }

  PodMigrationStatus await(String name, Predicate<PodMigrationStatus> ok) throws InterruptedException {
    PodMigrationStatus[] last = {null};
    awaitThat("status of " + name, () -> {
      PodMigration pm = client.resources(PodMigration.class).inNamespace("apps").withName(name).get();
      last[0] = pm == null ? null : pm.getStatus();
      return last[0] != null && ok.test(last[0]);
    }, () -> Serialization.asJson(last[0]));
    return last[0];
  }

  static void awaitThat(String what, BooleanSupplier ok, java.util.function.Supplier<String> last)
      throws InterruptedException {
    for (int i = 0; i < 400; i++) {
      if (ok.getAsBoolean()) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError(what + " never got there; last: " + last.get());
  }

  Pod get(String name) {
    return client.pods().inNamespace("apps").withName(name).get();
  }

  List<Pod> placeholders() {
    return client.pods().inNamespace("apps").withLabel(PlaceholderPod.FOR_LABEL).list().getItems();
  }

  List<String> eventReasons(String name) {
    return client.v1().events().inNamespace("apps").list().getItems().stream()
        .filter(e -> e.getInvolvedObject().getName().equals(name)).map(e -> e.getReason()).toList();
  }

  @Test
  void thePlaceholderRunsOnTheTargetWithTheSourcesSpecAndIpAndNoLabelItsReplicaSetSelects() throws Exception {
    calicoPolicy();
    Pod source = webPod();
    engine.waitingForCancel.add(source.getMetadata().getName());
    migrate("move-web", source.getMetadata().getName());
    PodMigrationStatus st = await("move-web", s -> "Transferring".equals(s.phase));
    assertThat(st.podIpAnnotation).isEqualTo("cni.projectcalico.org/ipAddrs");
    Pod p = get(st.placeholder);
    assertThat(p).as("placeholder " + st.placeholder).isNotNull();
    assertThat(p.getSpec().getNodeName()).isEqualTo("node-b");
    assertThat(p.getSpec().getContainers()).isEqualTo(source.getSpec().getContainers());
    assertThat(p.getMetadata().getAnnotations()).containsEntry("cni.projectcalico.org/ipAddrs", "[\"10.1.2.3\"]")
        .containsEntry("team", "payments").doesNotContainKey("cni.projectcalico.org/podIP");
    assertThat(p.getMetadata().getLabels()).containsExactly(Map.entry(PlaceholderPod.FOR_LABEL, source.getMetadata().getUid()));
    assertThat(selects(rs, p)).as("the ReplicaSet's selector matches the placeholder").isFalse();
    assertThat(p.getMetadata().getOwnerReferences()).isEmpty();
    assertThat(engine.requests).singleElement().satisfies(r -> assertThat(r.placeholder())
        .isEqualTo(new MigrationEngine.Placeholder(p.getMetadata().getName(), p.getMetadata().getUid())));
    cancel("move-web");
    assertThat(await("move-web", PodMigrationStatus::ended).phase).isEqualTo("RolledBack");
    awaitThat("placeholder deleted", () -> get(st.placeholder) == null, () -> "still there");
    assertThat(get(source.getMetadata().getName())).as("the source, untouched").isEqualTo(source);
  }

  @Test
  void anAgentFailureDeletesThePlaceholderAndLeavesTheSourcePodUntouched() throws Exception {
    Pod source = webPod();
    engine.failing.add(source.getMetadata().getName());
    migrate("move-web", source.getMetadata().getName());
    PodMigrationStatus st = await("move-web", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("RolledBack");
    assertThat(st.placeholder).isNotNull();
    assertThat(engine.requests.get(0).placeholder().name()).isEqualTo(st.placeholder);
    awaitThat("placeholder deleted", () -> placeholders().isEmpty(), () -> Serialization.asJson(placeholders()));
    assertThat(get(source.getMetadata().getName())).isEqualTo(source);
    assertThat(eventReasons("move-web")).contains("PlaceholderCreated", "PlaceholderDeleted", "RolledBack");
  }

  @Test
  void onSuccessTheReplicaSetsPodHandsItsPlaceOverAndTheReplicaSetNeverCountsTooFew() throws Exception {
    ReplicaSetView view = new ReplicaSetView(rs);
    try (Watch w = client.pods().inNamespace("apps").watch(view)) {
      Pod source = webPod();
      String sourceName = source.getMetadata().getName();
      migrate("move-web", sourceName);
      PodMigrationStatus st = await("move-web", PodMigrationStatus::ended);
      assertThat(st.phase).as(st.failureReason).isEqualTo("Succeeded");
      assertThat(st.podIpAnnotation).as("no static IP: the fallback").isNull();
      Pod moved = get(st.placeholder);
      assertThat(moved.getSpec().getNodeName()).isEqualTo("node-b");
      assertThat(moved.getMetadata().getLabels()).isEqualTo(WEB);
      assertThat(moved.getMetadata().getOwnerReferences()).singleElement().satisfies(o -> {
        assertThat(o.getUid()).isEqualTo(rs.getMetadata().getUid());
        assertThat(o.getController()).isTrue();
      });
      assertThat(moved.getMetadata().getAnnotations()).doesNotContainKey("cni.projectcalico.org/ipAddrs");
      assertThat(get(sourceName)).isNull();
      awaitThat("the source's deletion seen", () -> view.deleted.contains(sourceName), view::toString);
      // what a ReplicaSet controller would have seen, event by event
      assertThat(view.fewest).as(view.toString()).isEqualTo(1);
      assertThat(view.mostAtOnce).as(view.toString()).isEqualTo(2);
      assertThat(view.whenTwo).as("the pod a scale-down removes while both count").containsOnly(sourceName);
      assertThat(view.seenBeforeDeletion.get(sourceName).getMetadata().getAnnotations())
          .as("deletion cost on the source before it was deleted")
          .containsEntry(PodHandover.DELETION_COST, String.valueOf(Integer.MIN_VALUE));
      assertThat(view.deleted).containsExactly(sourceName);
      assertThat(eventReasons("move-web")).contains("PlaceholderCreated", "HandingOver", "HandedOver", "Succeeded");
    }
  }

  @Test
  void aPlaceholderNeverReadyDoesNotTakeTheSourcesPlaceAndTheFailureSaysWhatIsLeftWhere() throws Exception {
    operator.stop();
    operator = new Operator(o -> o.withKubernetesClient(client).withCloseClientOnStop(false)
        .withUseSSAToPatchPrimaryResource(false).withSSABasedCreateUpdateMatchForDependentResources(false));
    operator.register(new PodMigrationReconciler(client, engine, new HandoverSettings(null, Duration.ofSeconds(1))));
    operator.start();
    Pod source = webPod();
    engine.neverReady.add(source.getMetadata().getName());
    migrate("move-web", source.getMetadata().getName());
    PodMigrationStatus st = await("move-web", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("Failed");
    assertThat(st.failureReason).contains("past the commit point", "was not Ready", "the pod runs in " + st.placeholder,
        "source Pod object " + source.getMetadata().getName() + " is left");
    Pod p = get(st.placeholder);
    assertThat(p.getMetadata().getOwnerReferences()).as("no owner: the ReplicaSet does not count it").isEmpty();
    assertThat(selects(rs, p)).isFalse();
    assertThat(get(source.getMetadata().getName()).getMetadata().getAnnotations())
        .containsEntry(PodHandover.DELETION_COST, String.valueOf(Integer.MIN_VALUE));
  }

  @Test
  void aControllerRestartedBetweenThePlaceholderAndTheEngineReusesThePlaceholder() throws Exception {
    Pod source = webPod();
    operator.stop();
    // what the previous controller left: status written (Pending, placeholder named), placeholder created
    PodMigration pm = migrate("move-web", source.getMetadata().getName());
    String name = PlaceholderPod.name(source.getMetadata().getName(), pm.getMetadata().getUid());
    Pod placeholder = client.pods().inNamespace("apps").resource(PlaceholderPod.build(source, name, "node-b", "move-web",
        null)).create();
    pm.setStatus(new PodMigrationStatus());
    pm.getStatus().phase = "Pending";
    pm.getStatus().sourceNode = "node-a";
    pm.getStatus().targetNode = "node-b";
    pm.getStatus().strategy = "cold";
    pm.getStatus().placeholder = name;
    client.resource(pm).updateStatus();
    startOperator();
    assertThat(await("move-web", PodMigrationStatus::ended).phase).isEqualTo("Succeeded");
    assertThat(engine.requests).singleElement().satisfies(r -> assertThat(r.placeholder().uid())
        .isEqualTo(placeholder.getMetadata().getUid()));
    assertThat(get(name).getMetadata().getUid()).isEqualTo(placeholder.getMetadata().getUid());
  }

  @Test
  void aDaemonSetsPodIsRefusedBeforeAnythingIsCreated() throws Exception {
    pod("logs-x1", new OwnerReferenceBuilder().withApiVersion("apps/v1").withKind("DaemonSet").withName("logs")
        .withUid("ds-uid").withController(true).build());
    migrate("move-logs", "logs-x1");
    PodMigrationStatus st = await("move-logs", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("Failed");
    assertThat(st.failureReason).contains("apps/logs-x1 belongs to DaemonSet logs", "every node");
    assertThat(placeholders()).isEmpty();
    assertThat(engine.requests).isEmpty();
  }

  @Test
  void aStatefulSetsPodIsRefusedWithTheReasonAndLeftAlone() throws Exception {
    Pod db = pod("db-0", new OwnerReferenceBuilder().withApiVersion("apps/v1").withKind("StatefulSet").withName("db")
        .withUid("sts-uid").withController(true).build());
    migrate("move-db", "db-0");
    PodMigrationStatus st = await("move-db", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("Failed");
    assertThat(st.failureReason).contains("apps/db-0 belongs to StatefulSet db", "known by their name",
        "does not move StatefulSet pods");
    assertThat(placeholders()).isEmpty();
    assertThat(engine.requests).isEmpty();
    assertThat(get("db-0")).isEqualTo(db);
  }

  @Test
  void aControllerRestartedAfterTheCommitPointFinishesTheHandOver() throws Exception {
    Pod source = webPod();
    operator.stop();
    // what the previous controller left: the engine committed, the placeholder holds the pod
    PodMigration pm = migrate("move-web", source.getMetadata().getName());
    Pod placeholder = client.pods().inNamespace("apps").resource(PlaceholderPod.build(source,
        PlaceholderPod.name(source.getMetadata().getName(), pm.getMetadata().getUid()), "node-b", "move-web", null))
        .create();
    client.pods().inNamespace("apps").withName(placeholder.getMetadata().getName()).subresource("status").patch(
        PatchContext.of(PatchType.JSON_MERGE),
        "{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
    pm.setStatus(new PodMigrationStatus());
    pm.getStatus().phase = "Cutover";
    pm.getStatus().migrationId = "m-earlier-1";
    pm.getStatus().sourceNode = "node-a";
    pm.getStatus().targetNode = "node-b";
    pm.getStatus().placeholder = placeholder.getMetadata().getName();
    client.resource(pm).updateStatus();
    engine.recoverable.put("m-earlier-1", "migrated");
    startOperator();
    assertThat(await("move-web", PodMigrationStatus::ended).phase).isEqualTo("Succeeded");
    assertThat(get(source.getMetadata().getName())).isNull();
    Pod moved = get(placeholder.getMetadata().getName());
    assertThat(moved.getMetadata().getLabels()).isEqualTo(WEB);
    assertThat(moved.getMetadata().getOwnerReferences()).extracting(OwnerReference::getUid)
        .containsExactly(rs.getMetadata().getUid());
  }

  void cancel(String name) {
    client.resources(PodMigration.class).inNamespace("apps").withName(name)
        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"cancel\":true}}");
  }

  static boolean selects(ReplicaSet rs, Pod p) {
    Map<String, String> labels = p.getMetadata().getLabels() == null ? Map.of() : p.getMetadata().getLabels();
    return rs.getSpec().getSelector().getMatchLabels().entrySet().stream()
        .allMatch(e -> e.getValue().equals(labels.get(e.getKey())));
  }

  /**
   * What a ReplicaSet controller would count after every pod event: its pods (its owner
   * reference, labels its selector matches, not being deleted); the fewest and most at once,
   * and which pod a scale-down would remove whenever there were two (the lowest deletion cost,
   * among Ready pods).
   */
  static final class ReplicaSetView implements Watcher<Pod> {
    final ReplicaSet rs;
    final Map<String, Pod> lastSeen = new java.util.concurrent.ConcurrentHashMap<>();
    /** Of a deleted pod, its state as the last event before its deletion showed it. */
    final Map<String, Pod> seenBeforeDeletion = new java.util.concurrent.ConcurrentHashMap<>();
    final List<String> deleted = new java.util.concurrent.CopyOnWriteArrayList<>();
    final List<String> whenTwo = new java.util.concurrent.CopyOnWriteArrayList<>();
    volatile int fewest = Integer.MAX_VALUE;
    volatile int mostAtOnce;

    ReplicaSetView(ReplicaSet rs) {
      this.rs = rs;
    }

    @Override
    public synchronized void eventReceived(Action action, Pod pod) {
      String name = pod.getMetadata().getName();
      if (action == Action.DELETED) {
        seenBeforeDeletion.put(name, lastSeen.remove(name));
        deleted.add(name);
      } else {
        lastSeen.put(name, pod);
      }
      List<Pod> counted = lastSeen.values().stream()
          .filter(p -> p.getMetadata().getOwnerReferences().stream()
              .anyMatch(o -> o.getUid().equals(rs.getMetadata().getUid()) && Boolean.TRUE.equals(o.getController())))
          .filter(p -> selects(rs, p) && p.getMetadata().getDeletionTimestamp() == null).toList();
      if (counted.isEmpty() && mostAtOnce == 0) {
        return; // before the source was created
      }
      fewest = Math.min(fewest, counted.size());
      mostAtOnce = Math.max(mostAtOnce, counted.size());
      if (counted.size() == 2) {
        whenTwo.add(counted.stream().min(java.util.Comparator.comparing((Pod p) -> PodHandover.ready(p))
            .thenComparing(p -> cost(p))).orElseThrow().getMetadata().getName());
      }
    }

    static int cost(Pod p) {
      Map<String, String> a = p.getMetadata().getAnnotations();
      return a == null || !a.containsKey(PodHandover.DELETION_COST) ? 0 : Integer.parseInt(a.get(PodHandover.DELETION_COST));
    }

    @Override
    public void onClose(WatcherException cause) {}

    @Override
    public synchronized String toString() {
      return "fewest " + fewest + ", most " + mostAtOnce + ", removed when two: " + whenTwo + ", deleted " + deleted;
    }
  }
}
