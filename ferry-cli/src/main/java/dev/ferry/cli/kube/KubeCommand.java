package dev.ferry.cli.kube;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * {@code ferry kube ...}: Ferry on a Kubernetes cluster through its resources, what the
 * {@code kubectl ferry} plugin (deploy/kubectl-ferry) runs. Each subcommand creates or reads
 * PodMigration and NodeDrain resources; the controller in the cluster does the work.
 */
@Command(name = "kube", mixinStandardHelpOptions = true,
    description = {"Migrates pods on a Kubernetes cluster through Ferry's resources (the kubectl ferry plugin).",
        "Finds the cluster like kubectl: $KUBECONFIG or ~/.kube/config (or the in-cluster service account)."},
    subcommands = {KubeMigrateCommand.class, KubeDrainCommand.class, KubeStatusCommand.class, KubeCancelCommand.class})
public final class KubeCommand {
  @Option(names = {"-n", "--namespace"}, scope = ScopeType.INHERIT,
      description = "namespace of the pod and its PodMigration (default: the kubeconfig context's, else 'default')")
  String namespace;

  @Option(names = "--context", scope = ScopeType.INHERIT, description = "kubeconfig context to use (default: the current one)")
  String context;

  private final Function<String, KubernetesClient> clients;
  private volatile String server = "(unknown)";

  /** The command as the CLI runs it: clients from the kubeconfig. */
  public KubeCommand() {
    this(Kube::client);
  }

  /** With clients from {@code clients} (given the {@code --context}, may be null): tests hand in a mock server's. */
  public KubeCommand(Function<String, KubernetesClient> clients) {
    this.clients = clients;
  }

  /** A client for the subcommand to use and close. */
  KubernetesClient client() {
    // fabric8 warns once per resource type that v1alpha1 is not stable: noise on a user's terminal
    ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(
        "io.fabric8.kubernetes.client.dsl.internal.VersionUsageUtils")).setLevel(ch.qos.logback.classic.Level.ERROR);
    KubernetesClient c = clients.apply(context);
    server = String.valueOf(c.getMasterUrl());
    return c;
  }

  /** {@link Kube#apiError} for the server of the last {@link #client()}. */
  IllegalStateException apiError(KubernetesClientException e) {
    return Kube.apiError(e, server);
  }

  /** The namespace to work in: {@code -n}, else the client's (kubeconfig context), else "default". */
  String namespace(KubernetesClient client) {
    if (namespace != null && !namespace.isBlank()) {
      return namespace;
    }
    return client.getNamespace() != null ? client.getNamespace() : "default";
  }
}
