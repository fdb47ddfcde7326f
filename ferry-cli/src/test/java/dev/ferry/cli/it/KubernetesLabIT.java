package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.kubernetes.controller.CoordinatorEngine;
import dev.ferry.kubernetes.controller.PodMigrationReconciler;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes controller drives the very state machine `ferry migrate` does: a PodMigration
 * created in an API server (fabric8's mock, CRUD mode) moves a real Redis pod of a lab, under
 * write load, from host-a to host-b, and its status tells how it went.
 */
@EnableKubernetesMockClient(crud = true)
class KubernetesLabIT {
  KubernetesClient client;

  @Test
  void aPodMigrationMovesARealRedisWithEveryAcknowledgedWrite() throws Exception {
    try (TestLab t = TestLab.up()) {
      TestLab.RedisUnderLoad redis = t.runRedisUnderLoad(16);
      client.apiextensions().v1().customResourceDefinitions().resource(Serialization.unmarshal(
          Files.readString(Path.of("..", "deploy", "crds", "podmigrations.ferry.dev-v1.yml")),
          CustomResourceDefinition.class)).create();
      client.apiextensions().v1().customResourceDefinitions().resource(Serialization.unmarshal(
          Files.readString(Path.of("..", "deploy", "crds", "migrationpolicies.ferry.dev-v1.yml")),
          CustomResourceDefinition.class)).create();
      for (String n : List.of("host-a", "host-b")) { // the lab's hosts are the cluster's nodes
        client.nodes().resource(new NodeBuilder().withNewMetadata().withName(n).endMetadata().build()).create();
      }
      client.pods().inNamespace("default").resource(new PodBuilder().withNewMetadata().withName("redis").endMetadata()
          .withNewSpec().withNodeName("host-a").addNewContainer().withName("redis").withImage("redis").endContainer()
          .endSpec().build()).create();
      Operator operator = new Operator(o -> o.withKubernetesClient(client).withCloseClientOnStop(false)
          .withUseSSAToPatchPrimaryResource(false).withSSABasedCreateUpdateMatchForDependentResources(false));
      operator.register(new PodMigrationReconciler(client, new CoordinatorEngine(t.coordinator)));
      operator.start();
      try {
        PodMigration pm = new PodMigration();
        pm.setMetadata(new ObjectMetaBuilder().withName("move-redis").withNamespace("default").build());
        pm.setSpec(new PodMigrationSpec());
        pm.getSpec().podName = "redis";
        pm.getSpec().targetNode = "host-b";
        pm.getSpec().strategy = "cold";
        client.resource(pm).create();
        PodMigrationStatus st = null;
        for (int i = 0; i < 600 && (st == null || !st.ended()); i++) {
          Thread.sleep(100);
          st = client.resources(PodMigration.class).inNamespace("default").withName("move-redis").get().getStatus();
        }
        assertThat(st).isNotNull();
        assertThat(st.phase).as(st.failureReason).isEqualTo("Succeeded");
        assertThat(st.migrationId).isEqualTo(t.store.migrations().get(0).id());
        assertThat(st.frozenMs).as(Serialization.asJson(st)).isPositive();
        assertThat(st.sourceNode).isEqualTo("host-a");
        assertThat(t.store.pod("redis").orElseThrow().host()).isEqualTo("host-b");
        assertThat(client.v1().events().inNamespace("default").list().getItems())
            .extracting(e -> e.getReason()).contains("Pending", "Dumping", "Transferring", "Restoring", "Succeeded");
      } finally {
        operator.stop();
      }
      LoadResult l = DemoRunner.stopClient(redis.client(), redis.control(), 120);
      assertThat(l.acked).isGreaterThan(100);
      assertThat(l.lost).isZero();
      assertThat(l.connectionPreserved).isTrue();
    }
  }
}
