package dev.ferry.kubernetes.controller;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ferry's controller process: java-operator-sdk with both reconcilers ({@link
 * PodMigrationReconciler}, {@link NodeDrainReconciler}) driving the {@link MigrationEngine} the
 * caller gives, and leader election on a Lease, so that of several replicas only the one holding
 * the lease reconciles; the others keep their caches warm and take over once the lease expires
 * (a new leader recovers what the old one left half done from the PodMigrations' status).
 *
 * <p>A replica that loses the lease while running (it could not renew it in time) stops
 * reconciling at once and {@link #terminated()} completes with {@link Ending#LOST_LEASE}: the
 * process should exit so that Kubernetes restarts it as a follower. Primary resources are
 * patched without server-side apply, the path the controller's tests run.
 */
public final class FerryOperator implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(FerryOperator.class);

  /** The lease's name, as {@code deploy/rbac.yaml}'s Role expects it. */
  public static final String LEASE_NAME = "ferry-controller";

  /** How the operator ended. */
  public enum Ending {
    /** {@link #close()} was called. */
    STOPPED,
    /** Another replica holds the lease now; this one stopped reconciling. */
    LOST_LEASE
  }

  /**
   * Leader election: the Lease {@code leaseName} in {@code leaseNamespace}, held under
   * {@code identity} (the pod's name in a cluster). A leader that cannot renew within {@code
   * renewDeadline} gives up; a lease not renewed for {@code leaseDuration} can be taken over;
   * followers try every {@code retryPeriod}.
   */
  public record LeaderElection(String leaseNamespace, String leaseName, String identity, Duration leaseDuration,
      Duration renewDeadline, Duration retryPeriod) {
    public LeaderElection {
      Objects.requireNonNull(leaseNamespace, "the lease's namespace");
      Objects.requireNonNull(leaseName, "the lease's name");
      Objects.requireNonNull(identity, "this replica's identity");
      if (!(leaseDuration.compareTo(renewDeadline) > 0 && renewDeadline.toMillis() > retryPeriod.toMillis() * 1.2)) {
        throw new IllegalArgumentException("lease times must satisfy lease duration (" + leaseDuration.toMillis()
            + " ms) > renew deadline (" + renewDeadline.toMillis() + " ms) > 1.2 x retry period ("
            + retryPeriod.toMillis() + " ms)");
      }
    }

    /** Kubernetes' usual times (15 s lease, 10 s renew deadline, 2 s retry) on the lease {@link #LEASE_NAME}. */
    public static LeaderElection defaults(String leaseNamespace, String identity) {
      return new LeaderElection(leaseNamespace, LEASE_NAME, identity, Duration.ofSeconds(15), Duration.ofSeconds(10),
          Duration.ofSeconds(2));
    }
  }

  private final Operator operator;
  private final AtomicBoolean closing = new AtomicBoolean();
  private final CompletableFuture<Ending> terminated = new CompletableFuture<>();
  private volatile boolean leading;

  private FerryOperator(KubernetesClient client, MigrationEngine engine, LeaderElection election,
      HandoverSettings pods) {
    LeaderCallbacks callbacks = new LeaderCallbacks(this::startedLeading, this::stoppedLeading,
        leader -> LOG.info("leader of lease {}/{}: {}", election.leaseNamespace(), election.leaseName(), leader));
    this.operator = new Operator(o -> o.withKubernetesClient(client).withCloseClientOnStop(false)
        .withUseSSAToPatchPrimaryResource(false).withSSABasedCreateUpdateMatchForDependentResources(false)
        .withLeaderElectionConfiguration(new LeaderElectionConfiguration(election.leaseName(), election.leaseNamespace(),
            election.leaseDuration(), election.renewDeadline(), election.retryPeriod(), election.identity(), callbacks,
            false)));
    operator.register(new PodMigrationReconciler(client, engine, pods));
    operator.register(new NodeDrainReconciler(client));
  }

  /**
   * Starts the controller: informers sync, then it competes for the lease and reconciles once it
   * holds it. The client stays the caller's (not closed on {@link #close()}).
   *
   * @throws IllegalStateException when it cannot start, with the innermost cause: e.g. the API
   *     server is unreachable, or the service account may not get, create and update the lease
   */
  public static FerryOperator start(KubernetesClient client, MigrationEngine engine, LeaderElection election) {
    return start(client, engine, election, HandoverSettings.defaults());
  }

  /** The same, with the settings for Pod objects ({@code pods}: the default static-IP annotation, the Ready timeout). */
  public static FerryOperator start(KubernetesClient client, MigrationEngine engine, LeaderElection election,
      HandoverSettings pods) {
    FerryOperator f = new FerryOperator(client, engine, election, pods);
    try {
      f.operator.start();
    } catch (RuntimeException e) {
      f.close();
      throw new IllegalStateException("cannot start the controller (API server " + client.getMasterUrl() + ", lease "
          + election.leaseNamespace() + "/" + election.leaseName() + "): " + innermost(e), e);
    }
    return f;
  }

  private static String innermost(Throwable t) {
    String said = t.getMessage();
    for (Throwable c = t.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
      if (c.getMessage() != null) {
        said = c.getMessage();
      }
    }
    return said != null ? said : t.getClass().getSimpleName();
  }

  /** Whether this replica holds the lease (and so reconciles) right now. */
  public boolean isLeader() {
    return leading;
  }

  /** Completes when the controller stopped, with the reason. */
  public CompletableFuture<Ending> terminated() {
    return terminated;
  }

  private void startedLeading() {
    leading = true;
    LOG.info("holding the lease: reconciling");
  }

  private void stoppedLeading() {
    leading = false;
    if (closing.get()) {
      return;
    }
    LOG.warn("lost the lease to another replica: stopping");
    // not from the leader elector's own thread, which stopping the operator cancels
    Thread t = new Thread(() -> stop(Ending.LOST_LEASE), "ferry-operator-stop");
    t.setDaemon(true);
    t.start();
  }

  /** Stops reconciling and leader election (the lease is left to expire); idempotent. */
  @Override
  public void close() {
    stop(Ending.STOPPED);
  }

  private void stop(Ending why) {
    if (closing.compareAndSet(false, true)) {
      try {
        operator.stop();
      } finally {
        leading = false;
        terminated.complete(why);
      }
    }
  }
}
