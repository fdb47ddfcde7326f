package dev.ferry.cli.kube;

import dev.ferry.kubernetes.controller.CoordinatorEngine;
import dev.ferry.kubernetes.controller.FerryOperator;
import dev.ferry.lab.Lab;
import dev.ferry.cli.LabHosts;
import dev.ferry.migration.MigrationStore;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ferry controller}: the Kubernetes controller process (what deploy/controller.yaml
 * runs). Reconciles PodMigrations and NodeDrains with Ferry's coordinator as the engine while
 * it holds the leader-election lease; exits 0 when stopped (SIGTERM), 1 when it lost the lease
 * to another replica (Kubernetes then restarts it as a follower).
 */
@Command(name = "controller", mixinStandardHelpOptions = true,
    description = {"Runs the Kubernetes controller: reconciles PodMigration and NodeDrain resources while this replica"
        + " holds the leader-election lease, moving pods with the coordinator of the lab given by --lab.",
        "Finds the API server like kubectl: in-cluster service account, $KUBECONFIG or ~/.kube/config."})
public final class ControllerCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--lease-namespace", defaultValue = "${env:POD_NAMESPACE:-ferry-system}",
      description = "namespace of the leader-election lease, the controller's own (default: $POD_NAMESPACE or ferry-system)")
  String leaseNamespace;

  @Option(names = "--lease-name", defaultValue = FerryOperator.LEASE_NAME,
      description = "name of the leader-election lease (default: ${DEFAULT-VALUE}, as deploy/rbac.yaml expects)")
  String leaseName;

  @Option(names = "--identity", defaultValue = "${env:POD_NAME}",
      description = "this replica's name in the lease (default: $POD_NAME, else the host name)")
  String identity;

  @Option(names = "--lease-duration", defaultValue = "15", description = "seconds a lease holds without renewal (default: 15)")
  long leaseSeconds;

  @Option(names = "--renew-deadline", defaultValue = "10",
      description = "seconds the leader has to renew the lease before it gives up (default: 10)")
  long renewSeconds;

  @Option(names = "--retry-period", defaultValue = "2", description = "seconds between tries for the lease (default: 2)")
  long retrySeconds;

  @Override
  public Integer call() throws Exception {
    FerryOperator.LeaderElection election = election();
    Lab lab = Lab.require(Kube.lab(spec));
    try (MigrationStore store = new MigrationStore(lab.config().stateDir());
        KubernetesClient client = Kube.client(null)) {
      FerryOperator op = FerryOperator.start(client, new CoordinatorEngine(LabHosts.coordinator(lab, store)), election);
      Thread hook = new Thread(op::close, "ferry-controller-shutdown");
      Runtime.getRuntime().addShutdownHook(hook);
      spec.commandLine().getOut().printf("ferry controller %s: started; leader election on lease %s/%s%n",
          election.identity(), election.leaseNamespace(), election.leaseName());
      spec.commandLine().getOut().flush();
      FerryOperator.Ending end = op.terminated().get();
      if (end == FerryOperator.Ending.LOST_LEASE) {
        spec.commandLine().getErr().println("ferry: controller " + election.identity() + " lost the lease "
            + election.leaseNamespace() + "/" + election.leaseName() + " to another replica; exiting so that it restarts"
            + " as a follower");
        return 1;
      }
      return 0;
    }
  }

  /** The leader-election settings the options give; a clear error when they do not fit together. */
  FerryOperator.LeaderElection election() {
    String id = identity != null && !identity.isBlank() ? identity : hostName();
    try {
      return new FerryOperator.LeaderElection(leaseNamespace, leaseName, id, Duration.ofSeconds(leaseSeconds),
          Duration.ofSeconds(renewSeconds), Duration.ofSeconds(retrySeconds));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(e.getMessage() + "; adjust --lease-duration, --renew-deadline or --retry-period");
    }
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      throw new IllegalStateException("cannot tell this replica's name: set --identity or $POD_NAME", e);
    }
  }
}
