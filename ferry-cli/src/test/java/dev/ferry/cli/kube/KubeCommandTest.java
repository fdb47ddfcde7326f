package dev.ferry.cli.kube;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.kubernetes.model.NodeDrain;
import dev.ferry.kubernetes.model.NodeDrainStatus;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code ferry kube} (the kubectl plugin) against fabric8's mock API server in CRUD mode; where
 * a command waits, the test plays the controller and writes the status.
 */
@EnableKubernetesMockClient(crud = true)
class KubeCommandTest {
  KubernetesMockServer server;
  KubernetesClient client;

  @BeforeEach
  void setUp() throws Exception {
    for (String crd : List.of("podmigrations", "nodedrains")) {
      client.apiextensions().v1().customResourceDefinitions().resource(Serialization.unmarshal(
          Files.readString(Path.of("..", "deploy", "crds", crd + ".ferry.dev-v1.yml")), CustomResourceDefinition.class))
          .create();
    }
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("apps").endMetadata().build()).create();
    for (String n : List.of("node-1", "node-2")) {
      client.nodes().resource(new NodeBuilder().withNewMetadata().withName(n).endMetadata().build()).create();
    }
    client.pods().inNamespace("apps").resource(new PodBuilder().withNewMetadata().withName("redis-0").endMetadata()
        .withNewSpec().withNodeName("node-1").addNewContainer().withName("redis").withImage("redis").endContainer()
        .endSpec().build()).create();
  }

  record Result(int code, String out, String err) {}

  /** Runs {@code ferry kube ARGS} on a client of the mock server, with the CLI's error handling (Main's). */
  Result kube(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cl = new CommandLine(new KubeCommand(context -> server.createClient()));
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
      cmd.getErr().println("ferry: error: " + ex.getMessage());
      return ex instanceof IllegalArgumentException ? 2 : 1;
    });
    int code = cl.execute(args);
    return new Result(code, out.toString(), err.toString());
  }

  PodMigration pm(String name) {
    return client.resources(PodMigration.class).inNamespace("apps").withName(name).get();
  }

  /** Plays the controller: waits for {@code name} to exist, then writes each status change in turn. */
  CompletableFuture<Void> controller(String name, List<Consumer<PodMigrationStatus>> steps) {
    return CompletableFuture.runAsync(() -> {
      try {
        while (pm(name) == null) {
          Thread.sleep(20);
        }
        for (Consumer<PodMigrationStatus> step : steps) {
          client.resources(PodMigration.class).inNamespace("apps").withName(name).editStatus(cur -> {
            if (cur.getStatus() == null) {
              cur.setStatus(new PodMigrationStatus());
            }
            step.accept(cur.getStatus());
            return cur;
          });
          Thread.sleep(150);
        }
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    });
  }

  @Test
  void migrateCreatesAPodMigrationWithTheGivenSettings() {
    Result r = kube("migrate", "pod/redis-0", "--to", "node-2", "--strategy", "precopy", "--max-freeze", "300", "-n", "apps",
        "--name", "move-redis");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("podmigration.ferry.dev/move-redis created");
    PodMigration pm = pm("move-redis");
    assertThat(pm.getSpec().podName).isEqualTo("redis-0");
    assertThat(pm.getSpec().targetNode).isEqualTo("node-2");
    assertThat(pm.getSpec().strategy).isEqualTo("precopy");
    assertThat(pm.getSpec().maxFreezeMs).isEqualTo(300L);
    assertThat(pm.getSpec().cancel).isFalse();
  }

  @Test
  void aGeneratedNameStartsWithThePodsName() {
    Result r = kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(client.resources(PodMigration.class).inNamespace("apps").list().getItems())
        .singleElement().satisfies(pm -> assertThat(pm.getMetadata().getName()).matches("redis-0-[a-z0-9]{5}"));
  }

  @Test
  void badPodReferencesAreRefusedWithWhatToWriteAndCreateNothing() {
    Result bare = kube("migrate", "x", "--to", "node-2", "-n", "apps");
    assertThat(bare.code()).isEqualTo(2);
    assertThat(bare.err()).contains("'x' is not a pod reference: write pod/NAME, e.g. pod/x");
    Result empty = kube("migrate", "pod/", "--to", "node-2", "-n", "apps");
    assertThat(empty.code()).isEqualTo(2);
    assertThat(empty.err()).contains("'pod/' names no pod");
    Result deploy = kube("migrate", "deploy/web", "--to", "node-2", "-n", "apps");
    assertThat(deploy.code()).isEqualTo(2);
    assertThat(deploy.err()).contains("is a deploy, not a pod");
    assertThat(kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--strategy", "warp").err())
        .contains("unknown strategy 'warp'");
    assertThat(client.resources(PodMigration.class).inNamespace("apps").list().getItems()).isEmpty();
  }

  @Test
  void aMissingPodOrNodeIsNamedWithWhereToLook() {
    Result pod = kube("migrate", "pod/nope", "--to", "node-2", "-n", "apps");
    assertThat(pod.code()).isEqualTo(1);
    assertThat(pod.err()).contains("pod apps/nope not found; see: kubectl get pods -n apps");
    Result node = kube("migrate", "pod/redis-0", "--to", "node-9", "-n", "apps");
    assertThat(node.code()).isEqualTo(1);
    assertThat(node.err()).contains("node node-9 not found");
    assertThat(kube("migrate", "pod/redis-0", "-n", "apps").err()).contains("Missing required option: '--to=NODE'");
    assertThat(client.resources(PodMigration.class).inNamespace("apps").list().getItems()).isEmpty();
  }

  @Test
  void waitShowsProgressLiveAndExitsZeroWhenItSucceeded() {
    CompletableFuture<Void> ctl = controller("move-redis", List.of(
        st -> st.phase = "Pending",
        st -> {
          st.phase = "Transferring";
          st.progress = new PodMigrationStatus.Progress();
          st.progress.round = 2;
          st.progress.bytes = 256L << 20;
          st.progress.bytesPerSecond = 512L << 20;
          st.progress.predictedFreezeMs = 80L;
        },
        st -> {
          st.phase = "Succeeded";
          st.sourceNode = "node-1";
          st.targetNode = "node-2";
          st.strategy = "precopy";
          st.frozenMs = 95L;
        }));
    Result r = kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--name", "move-redis", "--wait", "--poll-ms", "20");
    ctl.join();
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("move-redis: Pending")
        .contains("move-redis: Transferring  round 2  256.0 MiB  512.0 MiB/s  predicted freeze 80 ms")
        .contains("move-redis: Succeeded  node-1 -> node-2 (precopy), frozen 95 ms");
    assertThat(r.out().indexOf("Transferring")).isLessThan(r.out().indexOf("Succeeded"));
  }

  @Test
  void waitExitsOneWithTheReasonWhenItRolledBack() {
    CompletableFuture<Void> ctl = controller("move-redis", List.of(
        st -> st.phase = "Dumping",
        st -> {
          st.phase = "RolledBack";
          st.failureReason = "failed in phase Transferring: agent node-2: connection reset; rolled back, source resumed";
        }));
    Result r = kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--name", "move-redis", "--wait", "--poll-ms", "20");
    ctl.join();
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.out()).contains("move-redis: RolledBack: failed in phase Transferring");
    assertThat(r.err()).contains("podmigration apps/move-redis RolledBack: failed in phase Transferring");
  }

  @Test
  void waitGivesUpAfterItsTimeoutWithExitOne() {
    Result r = kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--name", "slow", "--wait", "--timeout", "1",
        "--poll-ms", "50");
    assertThat(r.code()).isEqualTo(1);
    assertThat(r.out()).contains("slow: Waiting for the controller");
    assertThat(r.err()).contains("has not ended after 1 s; it goes on: see kubectl ferry status slow -n apps");
  }

  @Test
  void cancelSetsSpecCancelAndRefusesWhatIsMissingOrEnded() {
    assertThat(kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--name", "move-redis").code()).isZero();
    Result r = kube("cancel", "move-redis", "-n", "apps");
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("cancel of podmigration apps/move-redis requested");
    assertThat(pm("move-redis").getSpec().cancel).isTrue();

    Result missing = kube("cancel", "nope", "-n", "apps");
    assertThat(missing.code()).isEqualTo(1);
    assertThat(missing.err()).contains("podmigration apps/nope not found");

    controller("move-redis", List.of(st -> st.phase = "Succeeded")).join();
    Result ended = kube("cancel", "move-redis", "-n", "apps");
    assertThat(ended.code()).isEqualTo(1);
    assertThat(ended.err()).contains("has ended already (Succeeded); nothing to cancel");
  }

  @Test
  void cancelWithWaitExitsZeroOnceItRolledBack() {
    assertThat(kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--name", "move-redis").code()).isZero();
    CompletableFuture<Void> ctl = CompletableFuture.runAsync(() -> {
      while (!pm("move-redis").getSpec().cancel) {
        Thread.onSpinWait();
      }
    }).thenCompose(x -> controller("move-redis", List.of(st -> {
      st.phase = "RolledBack";
      st.failureReason = "cancelled in phase Transferring; rolled back, source resumed";
    })));
    Result r = kube("cancel", "move-redis", "-n", "apps", "--wait", "--poll-ms", "20");
    ctl.join();
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("move-redis: RolledBack: cancelled");
  }

  @Test
  void drainCreatesANodeDrainAndWaitEndsWithTheDrainsOutcome() {
    CompletableFuture<Void> ctl = CompletableFuture.runAsync(() -> {
      try {
        while (client.resources(NodeDrain.class).withName("drain-node-1").get() == null) {
          Thread.sleep(20);
        }
        client.resources(NodeDrain.class).withName("drain-node-1").editStatus(nd -> {
          nd.setStatus(new NodeDrainStatus());
          nd.getStatus().phase = "Drained";
          nd.getStatus().migrated = 5;
          nd.getStatus().skipped = 1;
          return nd;
        });
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
    });
    Result r = kube("drain", "node-1", "--max-parallel", "2", "--wait", "--poll-ms", "20");
    ctl.join();
    assertThat(r.code()).as(r.err()).isZero();
    assertThat(r.out()).contains("nodedrain.ferry.dev/drain-node-1 created (node node-1, 2 at once)")
        .contains("drain-node-1: Drained  migrated 5, remaining 0, failed 0, skipped 1, evicted 0");
    NodeDrain nd = client.resources(NodeDrain.class).withName("drain-node-1").get();
    assertThat(nd.getSpec().nodeName).isEqualTo("node-1");
    assertThat(nd.getSpec().maxParallel).isEqualTo(2);

    Result again = kube("drain", "node-1");
    assertThat(again.code()).isEqualTo(1);
    assertThat(again.err()).contains("nodedrain drain-node-1 exists already");
    assertThat(kube("drain", "node-7").err()).contains("node node-7 not found");
    assertThat(kube("drain", "node-2", "--max-parallel", "0").code()).isEqualTo(2);
  }

  @Test
  void statusListsTheNamespacesMigrationsAndShowsOneInDetail() {
    kube("migrate", "pod/redis-0", "--to", "node-2", "-n", "apps", "--name", "move-redis");
    controller("move-redis", List.of(st -> {
      st.phase = "Transferring";
      st.sourceNode = "node-1";
      st.targetNode = "node-2";
      st.strategy = "precopy";
      st.migrationId = "m-42";
    })).join();
    Result list = kube("status", "-n", "apps");
    assertThat(list.code()).as(list.err()).isZero();
    assertThat(list.out()).contains("NAME").contains("move-redis").contains("redis-0").contains("node-1")
        .contains("Transferring");
    Result one = kube("status", "move-redis", "-n", "apps");
    assertThat(one.out()).contains("Migration:  m-42").contains("Status:     Transferring");
    assertThat(kube("status", "nope", "-n", "apps").err()).contains("podmigration apps/nope not found");
    assertThat(kube("status", "-n", "default").out()).contains("no PodMigrations in namespace default");
  }

  @Test
  void anUnreachableApiServerIsNamedWithWhatToCheck() {
    StringWriter err = new StringWriter();
    CommandLine cl = new CommandLine(new KubeCommand(context -> new KubernetesClientBuilder()
        .withConfig(new ConfigBuilder().withMasterUrl("https://127.0.0.1:1").withRequestRetryBackoffLimit(0).build())
        .build()));
    cl.setErr(new PrintWriter(err, true));
    cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
      cmd.getErr().println("ferry: error: " + ex.getMessage());
      return 1;
    });
    assertThat(cl.execute("status", "-n", "apps")).isEqualTo(1);
    assertThat(err.toString()).contains("cannot reach the Kubernetes API server at https://127.0.0.1:1/")
        .contains("check $KUBECONFIG, ~/.kube/config or --context");
  }
}
