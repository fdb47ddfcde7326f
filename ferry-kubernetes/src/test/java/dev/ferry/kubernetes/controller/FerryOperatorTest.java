package dev.ferry.kubernetes.controller;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.kubernetes.MockApiServer;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Two controller replicas (each its own client and engine, as two pods would have) against one
 * API server (fabric8's mock, CRUD mode), with a 2 s lease: only the lease holder reconciles,
 * the other takes over once the holder stops, and a holder that loses the lease stops.
 */
class FerryOperatorTest {
  static final String NS = "ferry-system";
  static final FerryOperator.LeaderElection A = election("controller-a");
  static final FerryOperator.LeaderElection B = election("controller-b");

  MockApiServer api;
  final List<AutoCloseable> closing = new ArrayList<>();

  static FerryOperator.LeaderElection election(String identity) {
    return new FerryOperator.LeaderElection(NS, FerryOperator.LEASE_NAME, identity, Duration.ofSeconds(2),
        Duration.ofMillis(1500), Duration.ofMillis(250));
  }

  @BeforeEach
  void setUp() {
    api = MockApiServer.start();
    KubernetesClient c = api.client();
    for (String ns : List.of(NS, "apps")) {
      c.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(ns).endMetadata().build()).create();
    }
    for (String n : List.of("node-a", "node-b")) {
      c.nodes().resource(new NodeBuilder().withNewMetadata().withName(n).endMetadata().build()).create();
    }
    for (int i = 1; i <= 4; i++) {
      c.pods().inNamespace("apps").resource(new PodBuilder().withNewMetadata().withName("p" + i).endMetadata()
          .withNewSpec().withNodeName("node-a").addNewContainer().withName("app").withImage("redis").endContainer()
          .endSpec().build()).create();
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    for (int i = closing.size() - 1; i >= 0; i--) {
      closing.get(i).close();
    }
    api.close();
  }

  /** A replica: its own client and engine, as a second pod of the Deployment would have. */
  record Replica(FerryOperator operator, FakeEngine engine) {}

  Replica replica(FerryOperator.LeaderElection election) {
    KubernetesClient client = api.newClient();
    closing.add(client);
    FakeEngine engine = new FakeEngine(client);
    engine.phaseMillis = 5;
    FerryOperator op = FerryOperator.start(client, engine, election);
    closing.add(op);
    return new Replica(op, engine);
  }

  String holder() {
    Lease l = api.client().leases().inNamespace(NS).withName(FerryOperator.LEASE_NAME).get();
    return l == null ? null : l.getSpec().getHolderIdentity();
  }

  void migrate(String name, String pod) {
    PodMigration pm = new PodMigration();
    pm.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace("apps").build());
    pm.setSpec(new PodMigrationSpec());
    pm.getSpec().podName = pod;
    pm.getSpec().targetNode = "node-b";
    api.client().resource(pm).create();
  }

  String phase(String name) {
    PodMigrationStatus st = api.client().resources(PodMigration.class).inNamespace("apps").withName(name).get().getStatus();
    return st == null ? null : st.phase;
  }

  static void await(String what, Duration limit, BooleanSupplier ok) throws InterruptedException {
    long end = System.nanoTime() + limit.toNanos();
    while (!ok.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError(what + " did not happen within " + limit.toMillis() + " ms");
      }
      Thread.sleep(50);
    }
  }

  @Test
  void onlyTheLeaderReconcilesAndTheOtherTakesOverWithinTheLeaseTimeWhenItStops() throws Exception {
    Replica a = replica(A);
    await("controller-a taking the lease", Duration.ofSeconds(10), () -> a.operator().isLeader());
    Replica b = replica(B);
    for (int i = 1; i <= 3; i++) {
      migrate("m" + i, "p" + i);
    }
    for (int i = 1; i <= 3; i++) {
      String name = "m" + i;
      await(name + " Succeeded", Duration.ofSeconds(20), () -> "Succeeded".equals(phase(name)));
    }
    assertThat(holder()).isEqualTo("controller-a");
    assertThat(a.engine().startedPods).as("migrations the leader started").containsExactlyInAnyOrder("p1", "p2", "p3");
    assertThat(b.engine().startedPods).as("migrations the follower started").isEmpty();
    assertThat(b.operator().isLeader()).isFalse();

    long stopped = System.nanoTime();
    a.operator().close();
    await("controller-b taking over", Duration.ofSeconds(10), () -> b.operator().isLeader());
    long takeoverMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopped);
    // the stopped leader leaves its lease to expire (2 s); the follower tries every 250 ms
    assertThat(takeoverMs).as("take-over time, ms").isLessThan(2000 + 2 * 250 + 1000);
    assertThat(holder()).isEqualTo("controller-b");
    assertThat(a.operator().terminated()).isCompletedWithValue(FerryOperator.Ending.STOPPED);

    migrate("m4", "p4");
    await("m4 Succeeded under the new leader", Duration.ofSeconds(20), () -> "Succeeded".equals(phase("m4")));
    assertThat(b.engine().startedPods).containsExactly("p4");
    assertThat(a.engine().startedPods).containsExactlyInAnyOrder("p1", "p2", "p3");
  }

  @Test
  void aLeaderWhoseLeaseIsTakenStopsReconciling() throws Exception {
    Replica a = replica(A);
    await("controller-a taking the lease", Duration.ofSeconds(10), () -> a.operator().isLeader());
    // another replica took the lease (as after a network partition healed): a must not go on
    takeLease("controller-z");
    assertThat(a.operator().terminated().get(10, TimeUnit.SECONDS)).isEqualTo(FerryOperator.Ending.LOST_LEASE);
    assertThat(a.operator().isLeader()).isFalse();
    migrate("m1", "p1");
    Thread.sleep(1000);
    assertThat(a.engine().startedPods).as("migrations started after losing the lease").isEmpty();
    assertThat(phase("m1")).isNull();
  }

  /**
   * Takes the lease as another replica would: read, then update with the version read, again
   * when the leader renewed it in between (409 Conflict), as client-go's leader election does.
   */
  private void takeLease(String holder) {
    for (int attempt = 1; ; attempt++) {
      try {
        api.client().leases().inNamespace(NS).withName(FerryOperator.LEASE_NAME).edit(l -> {
          l.getSpec().setHolderIdentity(holder);
          l.getSpec().setRenewTime(ZonedDateTime.now().plusSeconds(30));
          l.getSpec().setLeaseDurationSeconds(60);
          return l;
        });
        return;
      } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
        if (e.getCode() != 409 || attempt == 20) {
          throw e;
        }
      }
    }
  }

  @Test
  void withoutRightsOnTheLeaseItRefusesToStartAndSaysWhichLease() {
    try (MockApiServer denied = MockApiServer.start(List.of("get"))) {
      assertThatThrownBy(() -> FerryOperator.start(denied.client(), new FakeEngine(denied.client()), A))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("cannot start the controller")
          .hasMessageContaining("lease ferry-system/ferry-controller")
          .hasMessageContaining("create");
    }
  }
}
