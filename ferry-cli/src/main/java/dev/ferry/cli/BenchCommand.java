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
 * {@code ferry bench cold}: Ferry's cold migration of Redis at several data sizes, beside a
 * baseline measured in the same run on the same lab: plain {@code runc checkpoint}, a copy
 * of the image directory, {@code runc restore}.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Benchmarks cold and post-copy migration of Redis against plain runc checkpoint / copy / restore "
        + "(prints a table, writes JSON and Markdown).")
final class BenchCommand implements Callable<Integer> {
  /** Data sizes to load into Redis. */
  @Option(names = "--sizes", split = ",", defaultValue = "64,256,1024", description = "Redis data sizes in MiB (default: ${DEFAULT-VALUE})")
  List<Long> sizes;

  /** Repetitions per size and case. */
  @Option(names = "--runs", defaultValue = "3", description = "runs per size and case; medians are reported (default: ${DEFAULT-VALUE})")
  int runs;

  /** JSON output. */
  @Option(names = "--json", description = "JSON output (default: bench/results/cold-migration.json)")
  Path json;

  /** Lab name used by the benchmark. */
  @Option(names = "--bench-lab", defaultValue = "bench", description = "name of the benchmark's own lab")
  String labName;

  /** One measurement. */
  public record Sample(String caseName, long dataMiB, int run, long frozenMs, long downtimeMs, long totalMs, long bytes,
      long lost, boolean connectionPreserved, Map<String, Long> breakdownMs) {}

  private static final List<String> CASES = List.of("ferry-cold", "ferry-postcopy", "runc-baseline");

  @Override
  public Integer call() throws Exception {
    FerryCommand.requireRoot();
    Path home = Path.of(System.getenv().getOrDefault("FERRY_HOME", "."));
    if (json == null) {
      json = home.resolve("bench/results/cold-migration.json");
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
    try {
      // 1. Ferry: cold migration host-a -> host-b, client writing all along
      Path c1 = work.resolve("client-ferry");
      Process client = DemoRunner.startClient(lab, ip, c1, size);
      DemoRunner.waitFor(c1, s -> s.connected && s.acked >= 200, 600, "redis to load " + size + " MiB");
      Thread.sleep(500);
      MigrationReport r = coordinator.migrate(new MigrationOptions("redis", "host-b", "cold", List.of()), ProgressListener.NONE);
      LoadResult l1 = stopClient(client, c1);
      out.add(new Sample("ferry-cold", size, run, r.frozenMs, l1.maxGapMs, r.totalMs, r.bytesTransferred, l1.lost,
          l1.connectionPreserved, r.frozenBreakdownMs));
      System.out.printf("   ferry-cold     frozen %5d ms, client gap %5d ms, %6.1f MiB moved, lost %d%n", r.frozenMs,
          l1.maxGapMs, r.bytesTransferred / 1048576.0, l1.lost);

      // 2. baseline on host-b: runc checkpoint, copy the image directory, runc restore
      Path c2 = work.resolve("client-runc");
      client = DemoRunner.startClient(lab, ip, c2, 0);
      DemoRunner.waitFor(c2, s -> s.connected && s.acked >= 200, 60, "the client to reconnect");
      Thread.sleep(500);
      String id = lab.config().name() + "-host-b-redis-redis";
      Path bundle = lab.config().host("host-b").stateDir().resolve("pods/redis/bundles/redis");
      Path img = work.resolve("img");
      Path copy = work.resolve("img-copy");
      long t0 = System.nanoTime();
      runc.checkpoint(id, img, work.resolve("w1"));
      long t1 = System.nanoTime();
      Exec.checked("cp", "-a", img.toString(), copy.toString());
      long t2 = System.nanoTime();
      runc.restore(id, bundle, copy, work.resolve("w2"));
      // without this, CRIU's dump-time network lock keeps the restored pod unreachable
      new PodNetwork(lab.config().name() + "-host-b-redis", "br0").removeCriuLock();
      long t3 = System.nanoTime();
      long bytes = Files.walk(img).filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
      LoadResult l2 = stopClient(client, c2);
      Map<String, Long> br = new LinkedHashMap<>();
      br.put("checkpoint", (t1 - t0) / 1_000_000);
      br.put("copy", (t2 - t1) / 1_000_000);
      br.put("restore", (t3 - t2) / 1_000_000);
      out.add(new Sample("runc-baseline", size, run, (t3 - t0) / 1_000_000, l2.maxGapMs, (t3 - t0) / 1_000_000, bytes, l2.lost,
          l2.connectionPreserved, br));
      System.out.printf("   runc-baseline  frozen %5d ms, client gap %5d ms, %6.1f MiB moved, lost %d%n", (t3 - t0) / 1_000_000,
          l2.maxGapMs, bytes / 1048576.0, l2.lost);

      // 3. Ferry post-copy back to host-a, same data, a fresh client
      Path c3 = work.resolve("client-postcopy");
      client = DemoRunner.startClient(lab, ip, c3, 0);
      DemoRunner.waitFor(c3, s -> s.connected && s.acked >= 200, 60, "the client to reconnect");
      Thread.sleep(500);
      MigrationReport p = coordinator.migrate(new MigrationOptions("redis", "host-a", "postcopy", List.of()), ProgressListener.NONE);
      LoadResult l3 = stopClient(client, c3);
      Map<String, Long> pb = new LinkedHashMap<>(p.frozenBreakdownMs);
      pb.put("atRisk", p.atRiskMs);
      out.add(new Sample("ferry-postcopy", size, run, p.frozenMs, l3.maxGapMs, p.totalMs, p.bytesTransferred, l3.lost,
          l3.connectionPreserved, pb));
      System.out.printf("   ferry-postcopy frozen %5d ms, client gap %5d ms, %6.1f MiB moved, lost %d, at risk %d ms%n", p.frozenMs,
          l3.maxGapMs, p.bytesTransferred / 1048576.0, l3.lost, p.atRiskMs);
    } finally {
      coordinator.deletePod("redis");
      Files2.deleteTree(work);
    }
    return out;
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
      for (String c : CASES) {
        List<Sample> ss = samples.stream().filter(s -> s.dataMiB() == size && s.caseName().equals(c)).toList();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("frozenMsMedian", median(ss.stream().map(Sample::frozenMs).toList()));
        m.put("downtimeMsMedian", median(ss.stream().map(Sample::downtimeMs).toList()));
        m.put("totalMsMedian", median(ss.stream().map(Sample::totalMs).toList()));
        m.put("bytesMedian", median(ss.stream().map(Sample::bytes).toList()));
        m.put("writesLost", ss.stream().mapToLong(Sample::lost).sum());
        m.put("runs", ss.size());
        row.put(c, m);
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> f = (Map<String, Object>) row.get("ferry-cold");
      @SuppressWarnings("unchecked")
      Map<String, Object> b = (Map<String, Object>) row.get("runc-baseline");
      @SuppressWarnings("unchecked")
      Map<String, Object> pc = (Map<String, Object>) row.get("ferry-postcopy");
      row.put("frozenRatio", ratio((Long) f.get("frozenMsMedian"), (Long) b.get("frozenMsMedian")));
      row.put("downtimeRatio", ratio((Long) f.get("downtimeMsMedian"), (Long) b.get("downtimeMsMedian")));
      row.put("postcopyDowntimeVsCold", ratio((Long) pc.get("downtimeMsMedian"), (Long) f.get("downtimeMsMedian")));
      rows.add(row);
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("benchmark", "cold-migration");
    out.put("criuVersion", caps.criuVersion());
    out.put("cpus", Runtime.getRuntime().availableProcessors());
    out.put("runsPerCase", runs);
    out.put("summary", rows);
    out.put("samples", samples);
    return out;
  }

  private static double ratio(long a, long b) {
    return b == 0 ? 0 : Math.round(100.0 * a / b) / 100.0;
  }

  @SuppressWarnings("unchecked")
  private static String markdown(Map<String, Object> out) {
    StringBuilder b = new StringBuilder();
    b.append("# Migration of Redis: Ferry cold and post-copy vs plain runc checkpoint / copy / restore\n\n");
    b.append("Medians of ").append(out.get("runsPerCase")).append(" runs per case, CRIU ").append(out.get("criuVersion"))
        .append(", ").append(out.get("cpus")).append(" CPUs. Ferry moves the pod between two lab hosts (identity, IP, "
            + "TCP connection); the baseline checkpoints, copies the image directory and restores on the same host. "
            + "Post-copy's MiB moved include the pages fetched after the restore.\n\n");
    b.append("| data MiB | case | frozen ms | client gap ms | total ms | MiB moved | writes lost |\n"
        + "|---:|---|---:|---:|---:|---:|---:|\n");
    for (Map<String, Object> row : (List<Map<String, Object>>) out.get("summary")) {
      for (String c : CASES) {
        Map<String, Object> m = (Map<String, Object>) row.get(c);
        b.append(String.format("| %s | %s | %s | %s | %s | %.1f | %s |%n", row.get("dataMiB"), c, m.get("frozenMsMedian"),
            m.get("downtimeMsMedian"), m.get("totalMsMedian"), ((Long) m.get("bytesMedian")) / 1048576.0, m.get("writesLost")));
      }
      b.append(String.format("| %s | ratio cold/baseline | %s | %s | | | |%n", row.get("dataMiB"), row.get("frozenRatio"),
          row.get("downtimeRatio")));
      b.append(String.format("| %s | ratio post-copy/cold (client gap) | | %s | | | |%n", row.get("dataMiB"),
          row.get("postcopyDowntimeVsCold")));
    }
    return b.toString();
  }
}
