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
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The controller against an API server that stores and watches objects (fabric8's mock server
 * in CRUD mode, server-side apply off), with the engine faked at its boundary.
 */
@EnableKubernetesMockClient(crud = true)
class PodMigrationReconcilerTest {
  KubernetesClient client;
  io.fabric8.kubernetes.client.server.mock.KubernetesMockServer server;
  FakeEngine engine;
  Operator operator;

  @BeforeEach
  void setUp() throws Exception {
    DeployedCrds.install(client);
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("apps")
        .withLabels(Map.of("tier", "prod")).endMetadata().build()).create();
    for (String n : List.of("node-a", "node-b", "node-c")) {
      client.nodes().resource(new NodeBuilder().withNewMetadata().withName(n)
          .withLabels(Map.of("rack", n.equals("node-c") ? "r2" : "r1")).endMetadata().build()).create();
    }
    engine = new FakeEngine(client);
    startOperator();
  }

  private void startOperator() {
    operator = new Operator(o -> o.withKubernetesClient(client).withCloseClientOnStop(false)
        .withUseSSAToPatchPrimaryResource(false).withSSABasedCreateUpdateMatchForDependentResources(false));
    operator.register(new PodMigrationReconciler(client, engine));
    operator.register(new NodeDrainReconciler(client));
    operator.start();
  }

  @AfterEach
  void tearDown() {
    operator.stop();
  }

  void pod(String name, String node, Map<String, String> labels) {
    client.pods().inNamespace("apps").resource(new PodBuilder().withNewMetadata().withName(name).withLabels(labels)
        .endMetadata().withNewSpec().withNodeName(node).addNewContainer().withName("app").withImage("redis")
        .endContainer().endSpec().build()).create();
  }

  PodMigration migrate(String name, String pod, String target) {
    PodMigration pm = new PodMigration();
    pm.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace("apps").build());
    pm.setSpec(new PodMigrationSpec());
    pm.getSpec().podName = pod;
    pm.getSpec().targetNode = target;
    return client.resource(pm).create();
  }

  PodMigrationStatus await(String name, Predicate<PodMigrationStatus> ok) throws InterruptedException {
    PodMigrationStatus last = null;
    for (int i = 0; i < 200; i++) {
      PodMigration pm = client.resources(PodMigration.class).inNamespace("apps").withName(name).get();
      last = pm == null ? null : pm.getStatus();
      if (last != null && ok.test(last)) {
        return last;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("status of " + name + " never got there; last: " + Serialization.asJson(last));
  }

  List<String> eventReasons(String name) {
    return client.v1().events().inNamespace("apps").list().getItems().stream()
        .filter(e -> e.getInvolvedObject().getName().equals(name)).map(e -> e.getReason()).toList();
  }

  @Test
  void happyPathWritesEveryPhaseToStatusBeforeGoingOnAndRecordsEvents() throws Exception {
    pod("redis", "node-a", Map.of("app", "redis"));
    migrate("move-redis", "redis", "node-b");
    PodMigrationStatus st = await("move-redis", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("Succeeded");
    assertThat(st.sourceNode).isEqualTo("node-a");
    assertThat(st.targetNode).isEqualTo("node-b");
    assertThat(st.migrationId).startsWith("m-fake-");
    assertThat(st.frozenMs).isEqualTo(120L);
    assertThat(st.startedAt).isNotNull();
    assertThat(st.finishedAt).isNotNull();
    assertThat(engine.statusSeen).containsExactly("redis:Preparing", "redis:Dumping", "redis:Transferring",
        "redis:Restoring", "redis:Cutover");
    assertThat(eventReasons("move-redis")).contains("Pending", "Preparing", "Transferring", "Cutover", "Succeeded");
  }

  @Test
  void anEngineFailureEndsRolledBackWithPhaseNodeAndCause() throws Exception {
    pod("redis", "node-a", Map.of());
    engine.failing.add("redis");
    migrate("move-redis", "redis", "node-b");
    PodMigrationStatus st = await("move-redis", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("RolledBack");
    assertThat(st.failureReason).contains("Transferring").contains("node-b").contains("connection reset");
  }

  @Test
  void cancelStopsARunningMigrationBeforeItsCommitPoint() throws Exception {
    pod("redis", "node-a", Map.of());
    engine.waitingForCancel.add("redis");
    migrate("move-redis", "redis", "node-b");
    await("move-redis", s -> "Transferring".equals(s.phase));
    // a merge patch without resourceVersion: the engine writes status meanwhile, and edit() (read,
    // then patch with the resourceVersion read) fails with 409 when a status write lands in between
    client.resources(PodMigration.class).inNamespace("apps").withName("move-redis")
        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"cancel\":true}}");
    PodMigrationStatus st = await("move-redis", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("RolledBack");
    assertThat(st.failureReason).contains("cancelled");
  }

  @Test
  void aCancelBeforeTheEnginesIdReachesStatusStopsThatMigrationAndStartsNoOther() throws Exception {
    pod("redis", "node-a", Map.of());
    engine.waitingForCancel.add("redis");
    engine.startMillis = 1500;
    migrate("move-redis", "redis", "node-b");
    for (int i = 0; i < 100 && engine.startedPods.isEmpty(); i++) {
      Thread.sleep(20);
    }
    assertThat(engine.startedPods).containsExactly("redis");
    client.resources(PodMigration.class).inNamespace("apps").withName("move-redis")
        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"cancel\":true}}");
    PodMigrationStatus st = await("move-redis", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("RolledBack");
    assertThat(st.failureReason).as("the engine's migration was the one cancelled").contains("cancelled in phase Transferring");
    assertThat(st.migrationId).isEqualTo("m-fake-1");
    assertThat(engine.startedPods).as("started once").containsExactly("redis");
  }

  @Test
  void aMissingPodOrTargetFailsAtOnceWithTheReason() throws Exception {
    migrate("ghost", "nope", "node-b");
    assertThat(await("ghost", PodMigrationStatus::ended).failureReason).contains("apps/nope does not exist");
    pod("redis", "node-a", Map.of());
    migrate("self", "redis", "node-a");
    assertThat(await("self", PodMigrationStatus::ended).failureReason).contains("node-a does not exist or is the pod's own");
  }

  @Test
  void aRestartedControllerRecoversAMigrationItWasRunning() throws Exception {
    pod("redis", "node-a", Map.of());
    operator.stop();
    // what the previous controller left: a migration mid-way, which the engine's record knows
    PodMigration pm = migrate("move-redis", "redis", "node-b");
    pm.setStatus(new PodMigrationStatus());
    pm.getStatus().phase = "Transferring";
    pm.getStatus().migrationId = "m-earlier-1";
    pm.getStatus().sourceNode = "node-a";
    pm.getStatus().targetNode = "node-b";
    client.resource(pm).updateStatus();
    engine.recoverable.put("m-earlier-1", "rolled-back");
    startOperator();
    PodMigrationStatus st = await("move-redis", PodMigrationStatus::ended);
    assertThat(st.phase).isEqualTo("RolledBack");
    assertThat(st.failureReason).contains("recovered: rolled back");
    assertThat(eventReasons("move-redis")).contains("Recovering");
  }

  @Test
  void theMostSpecificMatchingPolicyGivesTheDefaultsAndTheTargetComesFromTheNodeSelector() throws Exception {
    policy("all", Map.of(), "cold");
    policy("redis-prod", Map.of("app", "redis"), "precopy");
    pod("redis", "node-a", Map.of("app", "redis"));
    PodMigration pm = new PodMigration();
    pm.setMetadata(new ObjectMetaBuilder().withName("by-rack").withNamespace("apps").build());
    pm.setSpec(new PodMigrationSpec());
    pm.getSpec().podName = "redis";
    pm.getSpec().nodeSelector = Map.of("rack", "r2");
    client.resource(pm).create();
    PodMigrationStatus st = await("by-rack", PodMigrationStatus::ended);
    assertThat(st.policy).isEqualTo("redis-prod");
    assertThat(st.strategy).isEqualTo("precopy");
    assertThat(st.targetNode).isEqualTo("node-c");
  }

  @Test
  void thePolicysFreezeBudgetBandwidthAndPostcopyReachTheEngineWhereTheSpecLeavesThemOpen() throws Exception {
    MigrationPolicy p = new MigrationPolicy();
    p.setMetadata(new ObjectMetaBuilder().withName("tight").build());
    p.setSpec(new MigrationPolicySpec());
    p.getSpec().podSelector = Map.of("app", "redis");
    p.getSpec().maxFreezeMs = 250L;
    p.getSpec().bandwidthMBps = 80L;
    p.getSpec().allowPostcopy = true;
    client.resource(p).create();
    pod("redis", "node-a", Map.of("app", "redis"));
    PodMigration pm = migrate("move-redis", "redis", "node-b");
    assertThat(await("move-redis", PodMigrationStatus::ended).policy).isEqualTo("tight");
    MigrationEngine.Request r = engine.requests.get(engine.requests.size() - 1);
    assertThat(r.maxFreezeMs()).isEqualTo(250L);
    assertThat(r.bandwidthMBps()).isEqualTo(80L);
    assertThat(r.allowPostcopy()).isTrue();
    assertThat(pm.getSpec().maxFreezeMs).as("the spec itself names none").isNull();
  }

  void policy(String name, Map<String, String> podSelector, String strategy) {
    MigrationPolicy p = new MigrationPolicy();
    p.setMetadata(new ObjectMetaBuilder().withName(name).build());
    p.setSpec(new MigrationPolicySpec());
    p.getSpec().podSelector = podSelector;
    p.getSpec().strategy = strategy;
    client.resource(p).create();
  }

  @Test
  void aDrainWithParallelismTwoMovesFivePodsNeverMoreThanTwoAtOnceAndSkipsTheNodesOwn() throws Exception {
    engine.phaseMillis = 60;
    for (int i = 1; i <= 5; i++) {
      pod("app-" + i, "node-a", Map.of("app", "x"));
    }
    client.pods().inNamespace("apps").resource(new PodBuilder().withNewMetadata().withName("logs-agent")
        .addNewOwnerReference().withApiVersion("apps/v1").withKind("DaemonSet").withName("logs").withUid("u1").endOwnerReference()
        .endMetadata().withNewSpec().withNodeName("node-a").addNewContainer().withName("c").withImage("x").endContainer()
        .endSpec().build()).create();
    dev.ferry.kubernetes.model.NodeDrain nd = new dev.ferry.kubernetes.model.NodeDrain();
    nd.setMetadata(new ObjectMetaBuilder().withName("rack-1").build());
    nd.setSpec(new dev.ferry.kubernetes.model.NodeDrainSpec());
    nd.getSpec().nodeName = "node-a";
    nd.getSpec().maxParallel = 2;
    client.resource(nd).create();
    dev.ferry.kubernetes.model.NodeDrainStatus st = null;
    for (int i = 0; i < 300; i++) {
      var cur = client.resources(dev.ferry.kubernetes.model.NodeDrain.class).withName("rack-1").get();
      st = cur.getStatus();
      if (st != null && !"Draining".equals(st.phase)) {
        break;
      }
      Thread.sleep(50);
    }
    assertThat(st).isNotNull();
    assertThat(st.phase).isEqualTo("Drained");
    assertThat(st.migrated).as(Serialization.asJson(st)).isEqualTo(5);
    assertThat(st.skipped).isEqualTo(1);
    assertThat(engine.mostAtOnce.get()).as("migrations at once").isEqualTo(2);
    assertThat(client.resources(PodMigration.class).inNamespace("apps").withLabel(NodeDrainReconciler.DRAIN_LABEL, "rack-1")
        .list().getItems()).hasSize(5).allSatisfy(pm -> {
          assertThat(pm.getMetadata().getOwnerReferences().get(0).getKind()).isEqualTo("NodeDrain");
          assertThat(pm.getStatus().phase).isEqualTo("Succeeded");
        });
  }

  private void ownedPod(String name, String kind) {
    client.pods().inNamespace("apps").resource(new PodBuilder().withNewMetadata().withName(name)
        .addNewOwnerReference().withApiVersion("apps/v1").withKind(kind).withName(kind.toLowerCase() + "-x")
        .withUid("u-" + name).withController(true).endOwnerReference()
        .endMetadata().withNewSpec().withNodeName("node-a").addNewContainer().withName("c").withImage("x").endContainer()
        .endSpec().build()).create();
  }

  private void drain(String name, String unmigratable) {
    dev.ferry.kubernetes.model.NodeDrain nd = new dev.ferry.kubernetes.model.NodeDrain();
    nd.setMetadata(new ObjectMetaBuilder().withName(name).build());
    nd.setSpec(new dev.ferry.kubernetes.model.NodeDrainSpec());
    nd.getSpec().nodeName = "node-a";
    nd.getSpec().unmigratable = unmigratable;
    client.resource(nd).create();
  }

  private dev.ferry.kubernetes.model.NodeDrainStatus awaitDrain(String name, Predicate<dev.ferry.kubernetes.model.NodeDrainStatus> ok)
      throws InterruptedException {
    dev.ferry.kubernetes.model.NodeDrainStatus st = null;
    for (int i = 0; i < 400; i++) {
      st = client.resources(dev.ferry.kubernetes.model.NodeDrain.class).withName(name).get().getStatus();
      if (st != null && ok.test(st)) {
        return st;
      }
      Thread.sleep(50);
    }
    throw new AssertionError("drain " + name + " never got there; last status " + Serialization.asJson(st));
  }

  @Test
  void aDrainWithUnmigratableEvictEvictsAStatefulSetPodButLeavesTheNodesOwnDaemonSetPod() throws Exception {
    pod("web", "node-a", Map.of("app", "web"));
    ownedPod("db-0", "StatefulSet");
    ownedPod("logs-agent", "DaemonSet");
    // the API server's part: an eviction is accepted (201), and the pod goes a moment later
    java.util.concurrent.atomic.AtomicInteger evictions = new java.util.concurrent.atomic.AtomicInteger();
    server.expect().post().withPath("/api/v1/namespaces/apps/pods/db-0/eviction").andReply(201, req -> {
      evictions.incrementAndGet();
      return "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"db-0\"}}";
    }).always();
    server.expect().post().withPath("/api/v1/namespaces/apps/pods/logs-agent/eviction").andReply(500, req -> {
      throw new AssertionError("the node's own DaemonSet pod must not be evicted");
    }).always();
    drain("rack-evict", "evict");
    awaitDrain("rack-evict", s -> s.migrated == 1 && s.pods.stream().anyMatch(e -> "Evicting".equals(e.phase)));
    Thread.sleep(1200); // two more looks: still draining while the evicted pod is on the node, and not evicted twice
    var st = client.resources(dev.ferry.kubernetes.model.NodeDrain.class).withName("rack-evict").get().getStatus();
    assertThat(st.phase).isEqualTo("Draining");
    assertThat(evictions.get()).as("eviction requests for db-0").isEqualTo(1);
    client.pods().inNamespace("apps").withName("db-0").delete();
    st = awaitDrain("rack-evict", s -> "Drained".equals(s.phase));
    assertThat(st.migrated).as(Serialization.asJson(st)).isEqualTo(1);
    assertThat(st.evicted).isEqualTo(1);
    assertThat(st.skipped).isEqualTo(1);
    assertThat(st.pods).anySatisfy(e -> {
      assertThat(e.name).isEqualTo("db-0");
      assertThat(e.phase).isEqualTo("Evicted");
      assertThat(e.reason).contains("StatefulSet");
    });
    assertThat(evictions.get()).isEqualTo(1);
    assertThat(client.pods().inNamespace("apps").withName("logs-agent").get()).as("the node's own pod stays").isNotNull();
  }

  @Test
  void aDrainWithUnmigratableBlockStartsNothingWhileSuchAPodIsOnTheNodeAndGoesOnOnceItIsGone() throws Exception {
    pod("web", "node-a", Map.of("app", "web"));
    ownedPod("db-0", "StatefulSet");
    drain("rack-block", "block");
    var st = awaitDrain("rack-block", s -> "Blocked".equals(s.phase));
    assertThat(st.pods).anySatisfy(e -> {
      assertThat(e.name).isEqualTo("db-0");
      assertThat(e.phase).isEqualTo("Blocking");
      assertThat(e.reason).contains("StatefulSet");
    });
    Thread.sleep(300); // a look or two later: still nothing started
    assertThat(client.resources(PodMigration.class).inNamespace("apps").withLabel(NodeDrainReconciler.DRAIN_LABEL, "rack-block")
        .list().getItems()).isEmpty();
    assertThat(engine.startedPods).doesNotContain("web");
    client.pods().inNamespace("apps").withName("db-0").delete();
    st = awaitDrain("rack-block", s -> "Drained".equals(s.phase));
    assertThat(st.migrated).isEqualTo(1);
    assertThat(engine.startedPods).contains("web");
  }
}
