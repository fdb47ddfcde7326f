package dev.ferry.cli.kube;

import dev.ferry.kubernetes.model.NodeDrain;
import dev.ferry.kubernetes.model.NodeDrainSpec;
import dev.ferry.kubernetes.model.NodeDrainStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code ferry kube drain NODE}: creates a NodeDrain that moves every migratable pod off the
 * node, at most {@code --max-parallel} at once; with {@code --wait} follows it until it ends
 * (exit 0 when Drained, 1 otherwise).
 */
@Command(name = "drain", mixinStandardHelpOptions = true,
    description = "Creates a NodeDrain that live-migrates every pod off a node; --wait follows it until it ends.")
final class KubeDrainCommand implements Callable<Integer> {
  static final Set<String> UNMIGRATABLE = Set.of("skip", "evict", "block");

  @ParentCommand KubeCommand kube;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "NODE", description = "the node to empty")
  String node;

  @Option(names = "--max-parallel", paramLabel = "N", defaultValue = "1", description = "migrations at once (default: 1)")
  int maxParallel;

  @Option(names = "--unmigratable", defaultValue = "skip",
      description = "what to do with pods that cannot be migrated: skip (default), evict or block")
  String unmigratable;

  @picocli.CommandLine.Mixin WaitOptions waiting = new WaitOptions();

  @Override
  public Integer call() throws InterruptedException {
    if (maxParallel < 1) {
      throw new IllegalArgumentException("--max-parallel must be at least 1, not " + maxParallel);
    }
    if (!UNMIGRATABLE.contains(unmigratable)) {
      throw new IllegalArgumentException("--unmigratable must be skip, evict or block, not '" + unmigratable + "'");
    }
    String name = node.startsWith("node/") ? node.substring("node/".length()) : node;
    try (KubernetesClient client = kube.client()) {
      if (client.nodes().withName(name).get() == null) {
        throw new IllegalStateException("node " + name + " not found; see: kubectl get nodes");
      }
      String drainName = "drain-" + name;
      if (client.resources(NodeDrain.class).withName(drainName).get() != null) {
        throw new IllegalStateException("nodedrain " + drainName + " exists already; see: kubectl ferry status, or delete"
            + " it first: kubectl delete nodedrain " + drainName);
      }
      NodeDrain nd = new NodeDrain();
      nd.setMetadata(new ObjectMetaBuilder().withName(drainName).build());
      nd.setSpec(new NodeDrainSpec());
      nd.getSpec().nodeName = name;
      nd.getSpec().maxParallel = maxParallel;
      nd.getSpec().unmigratable = unmigratable;
      client.resource(nd).create();
      var out = spec.commandLine().getOut();
      out.println("nodedrain.ferry.dev/" + drainName + " created (node " + name + ", " + maxParallel + " at once)");
      out.flush();
      if (!waiting.waitForEnd) {
        return 0;
      }
      NodeDrainStatus end = new Waiter<NodeDrainStatus>(() -> {
        NodeDrain now = client.resources(NodeDrain.class).withName(drainName).get();
        if (now == null) {
          throw new IllegalStateException("nodedrain " + drainName + " was deleted while waiting for it");
        }
        return now.getStatus();
      }, StatusLine::of, st -> st.phase != null && !"Draining".equals(st.phase), waiting.poll())
          .follow(out, drainName, waiting.timeout());
      if (end == null) {
        spec.commandLine().getErr().println("ferry: nodedrain " + drainName + " has not ended after " + waiting.timeoutSeconds
            + " s; it goes on: see kubectl get nodedrain " + drainName);
        return 1;
      }
      if (!"Drained".equals(end.phase)) {
        spec.commandLine().getErr().println("ferry: nodedrain " + drainName + " " + end.phase + ": " + end.failed
            + " pod(s) failed to move; see kubectl get nodedrain " + drainName + " -o yaml");
        return 1;
      }
      return 0;
    } catch (KubernetesClientException e) {
      throw kube.apiError(e);
    }
  }
}
