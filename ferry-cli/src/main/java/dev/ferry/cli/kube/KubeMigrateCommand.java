package dev.ferry.cli.kube;

import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code ferry kube migrate pod/NAME --to NODE}: creates a PodMigration for the controller; with
 * {@code --wait} follows its status until it ends (exit 0 when it Succeeded, 1 otherwise).
 */
@Command(name = "migrate", mixinStandardHelpOptions = true,
    description = "Creates a PodMigration that moves a running pod to another node; --wait shows its progress until it ends.")
final class KubeMigrateCommand implements Callable<Integer> {
  static final Set<String> STRATEGIES = Set.of("auto", "cold", "precopy", "postcopy", "hybrid");

  @ParentCommand KubeCommand kube;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "pod/NAME", description = "the pod to move")
  String pod;

  @Option(names = "--to", paramLabel = "NODE", required = true, description = "target node")
  String target;

  @Option(names = "--strategy", description = "auto, cold, precopy, postcopy or hybrid (default: the MigrationPolicy's, else auto)")
  String strategy;

  @Option(names = "--max-freeze", paramLabel = "MS", description = "freeze budget in ms (default: the MigrationPolicy's)")
  Long maxFreezeMs;

  @Option(names = "--bandwidth", paramLabel = "MB/s", description = "cap on the transfer rate in MB/s")
  Long bandwidthMBps;

  @Option(names = "--allow-postcopy", description = "let auto choose post-copy to keep the freeze budget")
  Boolean allowPostcopy;

  @Option(names = "--name", description = "name of the PodMigration (default: the pod's name and a random suffix)")
  String name;

  @picocli.CommandLine.Mixin WaitOptions waiting = new WaitOptions();

  @Override
  public Integer call() throws InterruptedException {
    PodRef ref = PodRef.parse(pod);
    if (strategy != null && !STRATEGIES.contains(strategy)) {
      throw new IllegalArgumentException("unknown strategy '" + strategy + "': use one of auto, cold, precopy, postcopy, hybrid");
    }
    try (KubernetesClient client = kube.client()) {
      String ns = kube.namespace(client);
      if (client.pods().inNamespace(ns).withName(ref.name()).get() == null) {
        throw new IllegalStateException("pod " + ns + "/" + ref.name() + " not found; see: kubectl get pods -n " + ns);
      }
      if (client.nodes().withName(target).get() == null) {
        throw new IllegalStateException("node " + target + " not found; see: kubectl get nodes");
      }
      PodMigration pm = new PodMigration();
      pm.setMetadata(new ObjectMetaBuilder().withNamespace(ns)
          .withName(name != null ? name : ref.name() + "-" + suffix()).build());
      pm.setSpec(new PodMigrationSpec());
      pm.getSpec().podName = ref.name();
      pm.getSpec().targetNode = target;
      pm.getSpec().strategy = strategy;
      pm.getSpec().maxFreezeMs = maxFreezeMs;
      pm.getSpec().bandwidthMBps = bandwidthMBps;
      pm.getSpec().allowPostcopy = allowPostcopy;
      String created = client.resource(pm).create().getMetadata().getName();
      var out = spec.commandLine().getOut();
      out.println("podmigration.ferry.dev/" + created + " created (pod " + ref.name() + " to " + target + ")");
      out.flush();
      if (!waiting.waitForEnd) {
        return 0;
      }
      PodMigrationStatus end = follow(client, ns, created, waiting.poll(), waiting.timeout(),
          out);
      return exitCode(end, ns, created, waiting.timeoutSeconds, spec);
    } catch (KubernetesClientException e) {
      throw kube.apiError(e);
    }
  }

  /** Follows {@code name}'s status until it ends; null after {@code timeout}. */
  static PodMigrationStatus follow(KubernetesClient client, String ns, String name, Duration poll, Duration timeout,
      java.io.PrintWriter out) throws InterruptedException {
    return new Waiter<PodMigrationStatus>(() -> {
      PodMigration now = client.resources(PodMigration.class).inNamespace(ns).withName(name).get();
      if (now == null) {
        throw new IllegalStateException("podmigration " + ns + "/" + name + " was deleted while waiting for it");
      }
      return now.getStatus();
    }, StatusLine::of, PodMigrationStatus::ended, poll).follow(out, name, timeout);
  }

  /** 0 when it Succeeded; 1 (with the reason on stderr) when it did not, or is still running after the timeout. */
  static int exitCode(PodMigrationStatus end, String ns, String name, long timeoutSeconds, CommandSpec spec) {
    if (end == null) {
      spec.commandLine().getErr().println("ferry: podmigration " + ns + "/" + name + " has not ended after " + timeoutSeconds
          + " s; it goes on: see kubectl ferry status " + name + " -n " + ns);
      return 1;
    }
    if ("Succeeded".equals(end.phase)) {
      return 0;
    }
    spec.commandLine().getErr().println("ferry: podmigration " + ns + "/" + name + " " + end.phase
        + (end.failureReason != null ? ": " + end.failureReason : ""));
    return 1;
  }

  private static String suffix() {
    String chars = "bcdfghjklmnpqrstvwxz2456789";
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 5; i++) {
      b.append(chars.charAt(ThreadLocalRandom.current().nextInt(chars.length())));
    }
    return b.toString();
  }
}
