package dev.ferry.kubernetes.bench;

import dev.ferry.api.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The reconcile benchmark ({@code bench/k8s-reconcile.sh}): a warm-up run, then {@code runs}
 * runs of {@code objects} PodMigrations in this one JVM; writes the medians and every run to
 * {@code k8s-reconcile.json} and {@code .md} in the directory {@code ferry.bench.k8s.out} names.
 * Not part of the normal test run: its name matches no test pattern, and it only runs when that
 * property is set. Settings: {@code ferry.bench.k8s.objects} (1000), {@code .runs} (3),
 * {@code .warmup} (objects of the warm-up run, 1000), {@code .engineThreads} (8).
 */
@EnabledIfSystemProperty(named = "ferry.bench.k8s.out", matches = ".+")
class K8sReconcileBenchmark {
  @Test
  void reconcileBenchmark() throws Exception {
    Quiet.logs(() -> {
      measure();
      return null;
    });
  }

  private static void measure() throws Exception {
    int objects = Integer.getInteger("ferry.bench.k8s.objects", 1000);
    int runs = Integer.getInteger("ferry.bench.k8s.runs", 3);
    int warmup = Integer.getInteger("ferry.bench.k8s.warmup", objects);
    int engineThreads = Integer.getInteger("ferry.bench.k8s.engineThreads", 8);
    Path out = Path.of(System.getProperty("ferry.bench.k8s.out"));
    Duration timeout = Duration.ofMinutes(15);
    if (warmup > 0) {
      System.out.println("[bench] warm-up: " + warmup + " PodMigrations");
      ReconcileBench.run(warmup, engineThreads, timeout);
    }
    List<ReconcileBench.Run> done = new ArrayList<>();
    for (int i = 1; i <= runs; i++) {
      ReconcileBench.Run r = ReconcileBench.run(objects, engineThreads, timeout);
      System.out.printf(Locale.ROOT, "[bench] run %d: %d of %d Succeeded, %d reconciles in %d ms (%.1f/s, %.1f objects/s)%n",
          i, r.succeeded(), r.objects(), r.reconciles(), r.wallMs(), r.reconcilesPerSecond(), r.objectsPerSecond());
      if (r.succeeded() != objects) {
        throw new AssertionError("run " + i + ": only " + r.succeeded() + " of " + objects + " PodMigrations say Succeeded");
      }
      done.add(r);
    }
    Map<String, Object> result = result(done, objects, warmup, engineThreads);
    Files.createDirectories(out);
    Json.writeFile(out.resolve("k8s-reconcile.json"), result);
    Files.writeString(out.resolve("k8s-reconcile.md"), markdown(done, result));
  }

  private static Map<String, Object> result(List<ReconcileBench.Run> runs, int objects, int warmup, int engineThreads) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("benchmark", "k8s-reconcile");
    m.put("date", Instant.now().toString());
    m.put("objects", objects);
    m.put("runs", runs.size());
    m.put("warmupObjects", warmup);
    m.put("cpus", Runtime.getRuntime().availableProcessors());
    m.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    m.put("maxHeapBytes", Runtime.getRuntime().maxMemory());
    m.put("josdkReconcileThreads", runs.get(0).reconcileThreads());
    m.put("engineThreads", engineThreads);
    m.put("apiServer", "fabric8 kubernetes-server-mock 7.5.2, CRUD mode, HTTPS, in the same JVM");
    Map<String, Object> med = new LinkedHashMap<>();
    med.put("reconciles", (long) median(runs, ReconcileBench.Run::reconciles));
    med.put("wallMs", (long) median(runs, ReconcileBench.Run::wallMs));
    med.put("reconcilesPerSecond", round(median(runs, ReconcileBench.Run::reconcilesPerSecond)));
    med.put("objectsPerSecond", round(median(runs, ReconcileBench.Run::objectsPerSecond)));
    med.put("heapBeforeBytes", (long) median(runs, ReconcileBench.Run::heapBeforeBytes));
    med.put("heapAfterBytes", (long) median(runs, ReconcileBench.Run::heapAfterBytes));
    med.put("heapGrowthBytes", (long) median(runs, r -> r.heapAfterBytes() - r.heapBeforeBytes()));
    med.put("peakRssBytes", (long) median(runs, ReconcileBench.Run::peakRssBytes));
    med.put("cpuMs", (long) median(runs, ReconcileBench.Run::cpuMs));
    med.put("loadAtEnd", round(median(runs, ReconcileBench.Run::loadAtEnd)));
    m.put("median", med);
    m.put("peakRssPerRun", runs.stream().allMatch(ReconcileBench.Run::peakRssPerRun));
    m.put("processPeakRssBytes", ReconcileBench.peakRssBytes());
    m.put("all", runs);
    return m;
  }

  static double median(List<ReconcileBench.Run> runs, ToDoubleFunction<ReconcileBench.Run> f) {
    List<Double> v = runs.stream().map(f::applyAsDouble).sorted(Comparator.naturalOrder()).toList();
    int n = v.size();
    return n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
  }

  private static double round(double d) {
    return Math.round(d * 10) / 10.0;
  }

  private static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.1f", bytes / 1048576.0);
  }

  private static String markdown(List<ReconcileBench.Run> runs, Map<String, Object> result) {
    StringBuilder b = new StringBuilder();
    b.append("# Reconciling ").append(result.get("objects")).append(" PodMigrations against fabric8's mock API server\n\n");
    b.append(String.format(Locale.ROOT, "Medians of %d runs after a warm-up of %d objects, one JVM (%s), %d CPUs, JOSDK with"
        + " %d reconcile threads, the engine faked at its boundary (%d threads, every migration straight through its phases"
        + " to Succeeded). Wall time from the first create until the last PodMigration's status says Succeeded. Heap: in"
        + " use after a full GC, before the run and at its end (API server with its objects and controller still up)."
        + " Peak RSS: VmHWM of the process, %s. The mock API server runs in the same JVM and is counted in all of it,"
        + " CPU time too (ms used by this JVM during the run); load: the machine's 1-minute load average at the end"
        + " (other work on the machine).%n%n",
        runs.size(), (Integer) result.get("warmupObjects"), result.get("java"), (Integer) result.get("cpus"),
        (Integer) result.get("josdkReconcileThreads"), (Integer) result.get("engineThreads"),
        Boolean.TRUE.equals(result.get("peakRssPerRun")) ? "reset before each run" : "since the process started"));
    b.append("| run | objects | Succeeded | reconciles | wall ms | reconciles/s | objects/s | heap before MiB | heap after MiB"
        + " | heap growth MiB | peak RSS MiB | CPU ms | load |\n");
    b.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int i = 1;
    for (ReconcileBench.Run r : runs) {
      b.append(String.format(Locale.ROOT, "| %d | %d | %d | %d | %d | %.1f | %.1f | %s | %s | %s | %s | %d | %.1f |%n", i++,
          r.objects(), r.succeeded(), r.reconciles(), r.wallMs(), r.reconcilesPerSecond(), r.objectsPerSecond(),
          mib(r.heapBeforeBytes()), mib(r.heapAfterBytes()), mib(r.heapAfterBytes() - r.heapBeforeBytes()),
          mib(r.peakRssBytes()), r.cpuMs(), r.loadAtEnd()));
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> m = (Map<String, Object>) result.get("median");
    b.append(String.format(Locale.ROOT, "| **median** | %s | %s | %d | %d | %.1f | %.1f | %s | %s | %s | %s | %d | %.1f |%n",
        result.get("objects"), result.get("objects"), (Long) m.get("reconciles"), (Long) m.get("wallMs"),
        (Double) m.get("reconcilesPerSecond"), (Double) m.get("objectsPerSecond"), mib((Long) m.get("heapBeforeBytes")),
        mib((Long) m.get("heapAfterBytes")), mib((Long) m.get("heapGrowthBytes")), mib((Long) m.get("peakRssBytes")),
        (Long) m.get("cpuMs"), (Double) m.get("loadAtEnd")));
    return b.toString();
  }
}
