package dev.ferry.cli;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.lab.Lab;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationStore;
import dev.ferry.migration.ProgressListener;
import dev.ferry.runtime.CapabilityProbe;
import dev.ferry.runtime.CriuBinary;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.HostCapabilities;
import dev.ferry.runtime.PodNetwork;
import dev.ferry.runtime.RuncRuntime;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry bench}: Ferry's strategies (cold, pre-copy, post-copy, hybrid, auto) moving Redis
 * under write load at several data sizes, beside a baseline measured in the same run on the
 * same lab: plain {@code runc checkpoint}, a copy of the image directory, {@code runc restore}.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = BenchTransferCommand.class,
    description = "Benchmarks Ferry's migration strategies on Redis under write load against plain runc checkpoint /"
        + " copy / restore, in the same run (prints a table, writes JSON and Markdown).")
final class BenchCommand implements Callable<Integer> {
  /** Data sizes to load into Redis. */
  @Option(names = "--sizes", split = ",", defaultValue = "256,1024", description = "Redis data sizes in MiB (default: ${DEFAULT-VALUE})")
  List<Long> sizes;

  /** Repetitions per size and case. */
  @Option(names = "--runs", defaultValue = "3", description = "runs per size and case; medians are reported (default: ${DEFAULT-VALUE})")
  int runs;

  /** JSON output. */
  @Option(names = "--json", description = "JSON output (default: bench/results/migration-strategies.json)")
  Path json;

  /** Strategies to measure besides the runc baseline. */
  @Option(names = "--strategies", split = ",", defaultValue = "cold,precopy,postcopy,hybrid,auto",
      description = "Ferry strategies to run, in this order, the pod moving between the hosts (default: ${DEFAULT-VALUE})")
  List<String> strategies;

  /** Freeze budget for the auto case. */
  @Option(names = "--max-freeze", defaultValue = "300",
      description = "freeze budget for the auto case, which may choose hybrid (default: ${DEFAULT-VALUE} ms)")
  long maxFreezeMs;

  /** Lab name used by the benchmark. */
  @Option(names = "--bench-lab", defaultValue = "bench", description = "name of the benchmark's own lab")
  String labName;

  /** One measurement. */
  public record Sample(String caseName, long dataMiB, int run, long frozenMs, long downtimeMs, long totalMs, long bytes,
      long lost, boolean connectionPreserved, Map<String, Long> breakdownMs, String strategy, Long podMemoryBytes,
      int precopyRounds, Long atRiskMs, Long predictedFrozenMs) {}

  private List<String> cases() {
    List<String> c = new ArrayList<>();
    strategies.forEach(st -> c.add("ferry-" + st));
    c.add("runc-baseline");
    return c;
  }

  @Override
  public Integer call() throws Exception {
    FerryCommand.requireRoot();
    Path home = Path.of(System.getenv().getOrDefault("FERRY_HOME", "."));
    if (json == null) {
      json = home.resolve("bench/results/migration-strategies.json");
    }
    for (String st : strategies) {
      if (!Coordinator.STRATEGIES.contains(st)) {
        throw new IllegalArgumentException("strategy '" + st + "' is not one of " + Coordinator.STRATEGIES);
      }
    }
    HostCapabilities caps = CapabilityProbe.probe(CriuBinary.locate());
    RuncRuntime runc = new RuncRuntime(caps.criuPath(), caps.criuEnv());
    List<Sample> samples = new ArrayList<>();
    Lab.down(labName);
    try {
      Lab lab = Lab.up(labName, List.of("host-a", "host-b"), 16384);
      try (MigrationStore store = new MigrationStore(lab.config().stateDir())) {
        Coordinator coordinator = LabHosts.coordinator(lab, store);
        for (long size : sizes) {
          for (int run = 1; run <= runs; run++) {
            System.out.printf("== %d MiB, run %d/%d%n", size, run, runs);
            samples.addAll(oneRun(lab, coordinator, runc, size, run));
          }
        }
      }
    } finally {
      Lab.down(labName);
    }
    Map<String, Object> out = summarise(samples, caps);
    Files.createDirectories(json.toAbsolutePath().getParent());
    Json.writeFile(json.toAbsolutePath(), out);
    String md = markdown(out);
    Files.writeString(Path.of(json.toAbsolutePath().toString().replaceAll("\\.json$", "") + ".md"), md);
    System.out.println();
    System.out.print(md);
    System.out.println("JSON: " + json.toAbsolutePath());
    return samples.stream().allMatch(s -> s.lost() == 0) ? 0 : 1;
  }

  private List<Sample> oneRun(Lab lab, Coordinator coordinator, RuncRuntime runc, long size, int run) throws Exception {
    List<Sample> out = new ArrayList<>();
    var pod = coordinator.runPod("host-a", "redis",
        List.of(new ContainerSpec("redis", DemoRunner.REDIS, List.of())), size * 2 + 256);
    String ip = pod.spec().identity().ip();
    Path work = lab.config().runDir().resolve("bench");
    String at = "host-a";
    try {
      boolean loaded = false;
      for (String st : strategies) {
        // each Ferry strategy moves the pod to the other host, a client writing all along
        String to = at.equals("host-a") ? "host-b" : "host-a";
        Path c = work.resolve("client-" + st);
        Process client = DemoRunner.startClient(lab, ip, c, loaded ? 0 : size);
        DemoRunner.waitFor(c, s -> s.connected && s.acked >= 200, 600, loaded ? "the client to reconnect"
            : "redis to load " + size + " MiB");
        loaded = true;
        Thread.sleep(500);
        MigrationOptions o = st.equals("auto")
            ? new MigrationOptions("redis", to, "auto", List.of(), 0, maxFreezeMs, true, "proceed")
            : new MigrationOptions("redis", to, st, List.of());
        MigrationReport r;
        try {
          r = coordinator.migrate(o, ProgressListener.NONE);
        } catch (dev.ferry.migration.MigrationFailedException e) {
          r = e.report();
        }
        LoadResult l = stopClient(client, c);
        DemoRunner.downtimeBreakdown(r, l);
        if ("migrated".equals(r.outcome)) {
          at = to;
        }
        Map<String, Long> br = new LinkedHashMap<>(r.frozenBreakdownMs);
        r.downtimeBreakdownMs.forEach((k, v) -> br.put("client." + k, v));
        out.add(new Sample("ferry-" + st, size, run, orZero(r.frozenMs), l.maxGapMs, orZero(r.totalMs),
            orZero(r.bytesTransferred), l.lost, l.connectionPreserved && "migrated".equals(r.outcome), br, r.strategy,
            r.podMemoryBytes, r.precopyRounds, r.atRiskMs, r.predictedFrozenMs));
        System.out.printf("   %-15s frozen %5d ms (predicted %5d), client gap %5d ms, %7.1f MiB moved, lost %d%s%s%n",
            "ferry-" + st, orZero(r.frozenMs), orZero(r.predictedFrozenMs), l.maxGapMs,
            orZero(r.bytesTransferred) / 1048576.0, l.lost, st.equals("auto") ? " (chose " + r.strategy + ")" : "",
            "migrated".equals(r.outcome) ? "" : " NOT MIGRATED: " + r.error);
      }

      // baseline where the pod is now: runc checkpoint, copy the image directory, runc restore
      Path c2 = work.resolve("client-runc");
      Process client = DemoRunner.startClient(lab, ip, c2, loaded ? 0 : size);
      DemoRunner.waitFor(c2, s -> s.connected && s.acked >= 200, 600, "the client to connect");
      Thread.sleep(500);
      String id = lab.config().name() + "-" + at + "-redis-redis";
      Path bundle = lab.config().host(at).stateDir().resolve("pods/redis/bundles/redis");
      Path img = work.resolve("img");
      Path copy = work.resolve("img-copy");
      long t0 = System.nanoTime();
      runc.checkpoint(id, img, work.resolve("w1"));
      long t1 = System.nanoTime();
      Exec.checked("cp", "-a", img.toString(), copy.toString());
      long t2 = System.nanoTime();
      runc.restore(id, bundle, copy, work.resolve("w2"));
      // without this, CRIU's dump-time network lock keeps the restored pod unreachable
      new PodNetwork(lab.config().name() + "-" + at + "-redis", "br0").removeCriuLock();
      long t3 = System.nanoTime();
      long bytes = Files.walk(img).filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
      LoadResult l2 = stopClient(client, c2);
      Map<String, Long> br = new LinkedHashMap<>();
      br.put("checkpoint", (t1 - t0) / 1_000_000);
      br.put("copy", (t2 - t1) / 1_000_000);
      br.put("restore", (t3 - t2) / 1_000_000);
      out.add(new Sample("runc-baseline", size, run, (t3 - t0) / 1_000_000, l2.maxGapMs, (t3 - t0) / 1_000_000, bytes, l2.lost,
          l2.connectionPreserved, br, "runc", null, 0, null, null));
      System.out.printf("   %-15s frozen %5d ms, client gap %5d ms, %7.1f MiB moved, lost %d%n", "runc-baseline",
          (t3 - t0) / 1_000_000, l2.maxGapMs, bytes / 1048576.0, l2.lost);
    } finally {
      coordinator.deletePod("redis");
      Files2.deleteTree(work);
    }
    return out;
  }

  private static long orZero(Long v) {
    return v == null ? 0 : v;
  }

  private static LoadResult stopClient(Process client, Path control) throws Exception {
    Thread.sleep(500);
    return DemoRunner.stopClient(client, control, 300);
  }

  private static long median(List<Long> v) {
    List<Long> s = new ArrayList<>(v);
    s.sort(Long::compare);
    return s.isEmpty() ? 0 : s.get(s.size() / 2);
  }

  private Map<String, Object> summarise(List<Sample> samples, HostCapabilities caps) {
    List<Map<String, Object>> rows = new ArrayList<>();
    for (long size : sizes) {
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("dataMiB", size);
      for (String c : cases()) {
        List<Sample> ss = samples.stream().filter(s -> s.dataMiB() == size && s.caseName().equals(c)).toList();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("frozenMsMedian", median(ss.stream().map(Sample::frozenMs).toList()));
        m.put("downtimeMsMedian", median(ss.stream().map(Sample::downtimeMs).toList()));
        m.put("totalMsMedian", median(ss.stream().map(Sample::totalMs).toList()));
        m.put("bytesMedian", median(ss.stream().map(Sample::bytes).toList()));
        m.put("podMemoryBytesMedian", median(ss.stream().map(Sample::podMemoryBytes).filter(v -> v != null).toList()));
        m.put("writesLost", ss.stream().mapToLong(Sample::lost).sum());
        m.put("allConnectionsKept", ss.stream().allMatch(Sample::connectionPreserved));
        m.put("strategiesRun", ss.stream().map(Sample::strategy).distinct().toList());
        m.put("runs", ss.size());
        row.put(c, m);
      }
      long coldGap = field(row, "ferry-cold", "downtimeMsMedian");
      long baseFrozen = field(row, "runc-baseline", "frozenMsMedian");
      Map<String, Object> ratios = new LinkedHashMap<>();
      for (String c : cases()) {
        ratios.put(c + " downtime/cold", ratio(field(row, c, "downtimeMsMedian"), coldGap));
        ratios.put(c + " frozen/runc-baseline", ratio(field(row, c, "frozenMsMedian"), baseFrozen));
        long mem = field(row, c, "podMemoryBytesMedian");
        if (mem > 0) {
          ratios.put(c + " bytes/podMemory", ratio(field(row, c, "bytesMedian"), mem));
        }
      }
      row.put("ratios", ratios);
      rows.add(row);
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("benchmark", "migration-strategies");
    out.put("criuVersion", caps.criuVersion());
    out.put("cpus", Runtime.getRuntime().availableProcessors());
    out.put("runsPerCase", runs);
    out.put("autoMaxFreezeMs", maxFreezeMs);
    out.put("summary", rows);
    if (sizes.size() >= 2) {
      Map<String, Object> scaling = new LinkedHashMap<>();
      long small = sizes.get(sizes.size() - 2);
      long big = sizes.get(sizes.size() - 1);
      for (String c : cases()) {
        scaling.put(c + " frozen " + big + "/" + small + " MiB", ratio(field(rowOf(rows, big), c, "frozenMsMedian"),
            field(rowOf(rows, small), c, "frozenMsMedian")));
      }
      out.put("frozenScaling", scaling);
    }
    out.put("samples", samples);
    return out;
  }

  private static Map<String, Object> rowOf(List<Map<String, Object>> rows, long size) {
    return rows.stream().filter(r -> ((Long) r.get("dataMiB")) == size).findFirst().orElseThrow();
  }

  @SuppressWarnings("unchecked")
  private static long field(Map<String, Object> row, String c, String key) {
    Object m = row.get(c);
    return m == null ? 0 : ((Number) ((Map<String, Object>) m).get(key)).longValue();
  }

  private static double ratio(long a, long b) {
    return b == 0 ? 0 : Math.round(100.0 * a / b) / 100.0;
  }

  @SuppressWarnings("unchecked")
  private String markdown(Map<String, Object> out) {
    StringBuilder b = new StringBuilder();
    b.append("# Migration of Redis under write load: Ferry's strategies vs plain runc checkpoint / copy / restore\n\n");
    b.append("Medians of ").append(out.get("runsPerCase")).append(" runs per case, CRIU ").append(out.get("criuVersion"))
        .append(", ").append(out.get("cpus")).append(" CPUs, all in the same run. Ferry moves the pod between two lab"
            + " hosts (identity, IP, TCP connection) with a client writing all along; the baseline checkpoints, copies"
            + " the image directory and restores on one host. 'auto' has a ").append(out.get("autoMaxFreezeMs"))
        .append(" ms freeze budget and may use post-copy. MiB moved include pre-copy rounds and pages fetched after"
            + " the restore.\n\n");
    b.append("| data MiB | case | frozen ms | client gap ms | total ms | MiB moved | moved / pod memory | gap vs cold"
        + " | writes lost | connection kept |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (Map<String, Object> row : (List<Map<String, Object>>) out.get("summary")) {
      Map<String, Object> ratios = (Map<String, Object>) row.get("ratios");
      for (String c : cases()) {
        Map<String, Object> m = (Map<String, Object>) row.get(c);
        String name = c.equals("ferry-auto") ? c + " (" + String.join(",", (List<String>) m.get("strategiesRun")) + ")" : c;
        Object perMem = ratios.get(c + " bytes/podMemory");
        b.append(String.format("| %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %s |%n", row.get("dataMiB"), name,
            m.get("frozenMsMedian"), m.get("downtimeMsMedian"), m.get("totalMsMedian"),
            ((Long) m.get("bytesMedian")) / 1048576.0, perMem == null ? "" : perMem, ratios.get(c + " downtime/cold"),
            m.get("writesLost"), m.get("allConnectionsKept")));
      }
    }
    if (out.containsKey("frozenScaling")) {
      b.append("\nFrozen time, biggest over second-biggest size: ").append(out.get("frozenScaling")).append("\n");
    }
    return b.toString();
  }
}
