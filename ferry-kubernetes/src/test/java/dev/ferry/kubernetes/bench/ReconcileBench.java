package dev.ferry.kubernetes.bench;

import dev.ferry.kubernetes.MockApiServer;
import dev.ferry.kubernetes.controller.PodMigrationReconciler;
import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One benchmark run: a fresh mock API server (CRUD mode) with {@code objects} pods, the real
 * {@link PodMigrationReconciler} under JOSDK with an {@link InstantEngine}, then {@code objects}
 * PodMigrations created one after the other; timed from the first create until the last one's
 * status says Succeeded.
 */
final class ReconcileBench {
  static final String NAMESPACE = "bench";

  /**
   * What one run measured. {@code peakRssBytes} is this run's own peak when {@code peakRssPerRun},
   * else the process's; {@code cpuMs} the CPU time this JVM used meanwhile (all threads, the mock
   * server's too); {@code loadAtEnd} the machine's 1-minute load average then (other work on it);
   * {@code threadsBefore} the JVM's live threads when it began (what runs before left running).
   */
  record Run(int objects, int succeeded, long reconciles, long wallMs, double reconcilesPerSecond,
      double objectsPerSecond, long heapBeforeBytes, long heapAfterBytes, long peakRssBytes, boolean peakRssPerRun,
      int reconcileThreads, long cpuMs, double loadAtEnd, int threadsBefore) {}

  private ReconcileBench() {}

  static Run run(int objects, int engineThreads, Duration timeout) throws Exception {
    long heapBefore = heapUsedAfterGc();
    int threadsBefore = Thread.activeCount();
    boolean perRun = resetPeakRss();
    ReconcileCounter counter = new ReconcileCounter("podmigration");
    CountDownLatch succeeded = new CountDownLatch(objects);
    try (MockApiServer api = MockApiServer.start(); InstantEngine engine = new InstantEngine(engineThreads, succeeded::countDown)) {
      KubernetesClient client = api.client();
      cluster(client, objects);
      Operator operator = new Operator(o -> o.withKubernetesClient(client).withCloseClientOnStop(false)
          .withUseSSAToPatchPrimaryResource(false).withSSABasedCreateUpdateMatchForDependentResources(false)
          .withMetrics(counter));
      operator.register(new PodMigrationReconciler(client, engine));
      operator.start();
      try {
        long cpu0 = cpuNanos();
        long t0 = System.nanoTime();
        for (int i = 0; i < objects; i++) {
          client.resource(migration(i)).create();
        }
        if (!succeeded.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
          throw new IllegalStateException((objects - succeeded.getCount()) + " of " + objects
              + " PodMigrations reached Succeeded within " + timeout.toSeconds() + " s");
        }
        long wallNanos = System.nanoTime() - t0;
        long cpuMs = (cpuNanos() - cpu0) / 1_000_000;
        long reconciles = counter.reconciles();
        int ok = (int) client.resources(PodMigration.class).inNamespace(NAMESPACE).list().getItems().stream()
            .filter(pm -> pm.getStatus() != null && "Succeeded".equals(pm.getStatus().phase)).count();
        long heapAfter = heapUsedAfterGc();
        double seconds = wallNanos / 1e9;
        return new Run(objects, ok, reconciles, wallNanos / 1_000_000, reconciles / seconds, objects / seconds,
            heapBefore, heapAfter, peakRssBytes(), perRun,
            operator.getConfigurationService().concurrentReconciliationThreads(), cpuMs, loadAverage(), threadsBefore);
      } finally {
        operator.stop();
      }
    }
  }

  /** A namespace, two nodes and {@code pods} pods on the first. */
  private static void cluster(KubernetesClient client, int pods) {
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(NAMESPACE).endMetadata().build()).create();
    for (String n : new String[] {"node-a", "node-b"}) {
      client.nodes().resource(new NodeBuilder().withNewMetadata().withName(n).endMetadata().build()).create();
    }
    for (int i = 0; i < pods; i++) {
      client.pods().inNamespace(NAMESPACE).resource(new PodBuilder().withNewMetadata().withName("pod-" + i).endMetadata()
          .withNewSpec().withNodeName("node-a").addNewContainer().withName("app").withImage("redis").endContainer()
          .endSpec().build()).create();
    }
  }

  private static PodMigration migration(int i) {
    PodMigration pm = new PodMigration();
    pm.setMetadata(new ObjectMetaBuilder().withName("move-" + i).withNamespace(NAMESPACE).build());
    pm.setSpec(new PodMigrationSpec());
    pm.getSpec().podName = "pod-" + i;
    pm.getSpec().targetNode = "node-b";
    return pm;
  }

  /**
   * Heap in use after full collections, once it stops shrinking: what a run before let go of
   * (its server's and operator's threads end asynchronously) is freed only once they ended.
   */
  static long heapUsedAfterGc() throws InterruptedException {
    MemoryMXBean m = ManagementFactory.getMemoryMXBean();
    m.gc();
    long used = m.getHeapMemoryUsage().getUsed();
    for (int i = 0; i < 20; i++) {
      Thread.sleep(250);
      m.gc();
      long now = m.getHeapMemoryUsage().getUsed();
      if (Math.abs(used - now) < (1 << 20)) {
        return now;
      }
      used = now;
    }
    return used;
  }

  /** Resets the kernel's peak-RSS mark to the current RSS (Linux 4.0+); false where that is not possible. */
  static boolean resetPeakRss() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
      return true;
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      return false;
    }
  }

  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  /** The machine's 1-minute load average, or -1 where there is none. */
  static double loadAverage() {
    return ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
  }

  /** VmHWM of /proc/self/status in bytes, or -1 where there is none (not Linux). */
  static long peakRssBytes() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException e) {
      // not Linux
    }
    return -1;
  }
}
