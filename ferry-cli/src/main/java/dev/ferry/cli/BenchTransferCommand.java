package dev.ferry.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.Netns;
import dev.ferry.runtime.NetnsSocket;
import dev.ferry.transfer.Compression;
import dev.ferry.transfer.ImageReceiver;
import dev.ferry.transfer.ParallelSender;
import dev.ferry.transfer.PeerTls;
import dev.ferry.transfer.ResumableTransfers;
import dev.ferry.transfer.TransferProgress;
import dev.ferry.transfer.TransferSource;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry bench transfer}: Ferry's image transfer between two lab hosts, for 1 GiB of
 * incompressible data and for the memory of a real Redis, beside iperf3 (one stream) and
 * {@code tar | socat} over the same veth-and-bridge path in the same run.
 */
@Command(name = "transfer", mixinStandardHelpOptions = true,
    description = "Benchmarks Ferry's transfer between two lab hosts against iperf3 and tar|socat on the same path, in"
        + " the same run (prints a table, writes JSON and Markdown).")
final class BenchTransferCommand implements Callable<Integer> {
  private static final int PORT = 7390;

  @Option(names = "--mib", defaultValue = "1024", description = "data per case in MiB (default: ${DEFAULT-VALUE})")
  long mib;

  @Option(names = "--runs", defaultValue = "3", description = "runs per case; medians are reported (default: ${DEFAULT-VALUE})")
  int runs;

  @Option(names = "--json", description = "JSON output (default: bench/results/transfer.json)")
  Path json;

  @Option(names = "--bench-lab", defaultValue = "xbench", description = "name of the benchmark's own lab")
  String labName;

  @Option(names = "--streams", defaultValue = "2",
      description = "connections of the parallel cases (ParallelSender; 1 leaves them out) (default: ${DEFAULT-VALUE})")
  int streams;

  /** One case's medians: original MB/s, and iperf3's single-stream rate measured beside it. */
  public record Row(String caseName, String data, double mbPerSec, double iperf3MbPerSec, double ratioToIperf3,
      long originalBytes, long wireBytes, List<Double> runsMbPerSec) {}

  @Override
  public Integer call() throws Exception {
    FerryCommand.requireRoot();
    for (String tool : List.of("iperf3", "socat", "redis-server", "redis-cli", "tar")) {
      if (!Exec.run("sh", "-c", "command -v " + tool).ok()) {
        System.err.println("ferry bench transfer: " + tool + " is missing; run scripts/setup-host.sh first");
        return 2;
      }
    }
    Path home = Path.of(System.getenv().getOrDefault("FERRY_HOME", "."));
    Path out = json != null ? json : home.resolve("bench/results/transfer.json");
    Lab.down(labName);
    Lab lab = Lab.up(labName, List.of("host-a", "host-b"), 4096, LabConfig.HostEntry.DEFAULT_POD_SLOTS, true);
    List<Row> rows = new ArrayList<>();
    try {
      LabConfig.HostEntry a = lab.config().host("host-a");
      LabConfig.HostEntry b = lab.config().host("host-b");
      Path work = Files.createDirectories(lab.config().runDir().resolve("bench-transfer"));
      Path noise = Files.createDirectories(work.resolve("noise"));
      System.out.printf("making %d MiB of incompressible data ...%n", mib);
      Exec.checked("sh", "-c", "head -c " + (mib << 20) + " /dev/urandom > " + noise.resolve("pages-1.img"));
      Path redis = Files.createDirectories(work.resolve("redis"));
      System.out.printf("filling a Redis with ~%d MiB and copying its memory ...%n", mib);
      long redisBytes = redisMemory(a, redis.resolve("pages-1.img"), mib << 20);
      // agents are warm when they migrate (see Warmup): so is each case's code here before it is timed
      Path warm = Files.createDirectories(work.resolve("warm"));
      Exec.checked("sh", "-c", "head -c 32M " + noise.resolve("pages-1.img") + " > " + warm.resolve("pages-1.img")
          + " && head -c 32M " + redis.resolve("pages-1.img") + " >> " + warm.resolve("pages-1.img"));
      long warmBytes = Files.size(warm.resolve("pages-1.img"));
      // TLS's AES-GCM and GHASH reach C2 (their intrinsics) only after a few hundred MiB
      for (int i = 0; i < 4; i++) {
        for (Compression comp : Compression.values()) {
          ferry(a, b, PeerTls.PLAIN, PeerTls.PLAIN, warm, work.resolve("dst"), warmBytes, comp, 1);
        }
        for (int n : streams > 1 ? new int[] {1, streams} : new int[] {1}) {
          ferry(a, b, PeerTls.PLAIN, PeerTls.PLAIN, warm, work.resolve("dst"), warmBytes, Compression.AUTO, n);
          ferry(a, b, PeerTls.load(Lab.tlsDir(a)), PeerTls.load(Lab.tlsDir(b)), warm, work.resolve("dst"), warmBytes,
              Compression.AUTO, n);
        }
      }
      for (String[] c : new String[][] {{"incompressible", "noise"}, {"redis-memory", "redis"}}) {
        Path src = work.resolve(c[1]);
        long bytes = Files.size(src.resolve("pages-1.img"));
        Map<String, List<double[]>> m = new LinkedHashMap<>(); // case -> [mbPerSec, wireBytes, iperf3]
        for (int run = 1; run <= runs; run++) {
          double iperf = iperf3(a, b);
          measure(m, "iperf3 (1 stream)", new double[] {iperf, 0, iperf});
          measure(m, "tar|socat", new double[] {tarSocat(a, b, src, work.resolve("dst"), bytes), bytes, iperf});
          for (Compression comp : Compression.values()) {
            double[] r = ferry(a, b, PeerTls.PLAIN, PeerTls.PLAIN, src, work.resolve("dst"), bytes, comp, 1);
            measure(m, "ferry " + comp.name().toLowerCase(), new double[] {r[0], r[1], iperf});
          }
          // as agents send: mutual TLS with the lab's certificates
          double[] r = ferry(a, b, PeerTls.load(Lab.tlsDir(a)), PeerTls.load(Lab.tlsDir(b)), src, work.resolve("dst"), bytes,
              Compression.AUTO, 1);
          measure(m, "ferry auto + mutual TLS", new double[] {r[0], r[1], iperf});
          if (streams > 1) {
            r = ferry(a, b, PeerTls.PLAIN, PeerTls.PLAIN, src, work.resolve("dst"), bytes, Compression.AUTO, streams);
            measure(m, "ferry auto, " + streams + " streams", new double[] {r[0], r[1], iperf});
            r = ferry(a, b, PeerTls.load(Lab.tlsDir(a)), PeerTls.load(Lab.tlsDir(b)), src, work.resolve("dst"), bytes,
                Compression.AUTO, streams);
            measure(m, "ferry auto + mutual TLS, " + streams + " streams", new double[] {r[0], r[1], iperf});
          }
          System.out.printf("  %s run %d done (iperf3 %.0f MB/s)%n", c[0], run, iperf);
        }
        m.forEach((k, v) -> rows.add(row(k, c[0], v, bytes)));
      }
      System.out.printf("Redis memory image: %d MiB%n", redisBytes >> 20);
    } finally {
      Lab.down(labName);
    }
    System.out.println(markdown(rows));
    Map<String, Object> doc = new LinkedHashMap<>();
    doc.put("benchmark", "transfer");
    doc.put("mib", mib);
    doc.put("runs", runs);
    doc.put("cases", rows.stream().map(r -> {
      Map<String, Object> x = new LinkedHashMap<>();
      x.put("case", r.caseName() + " / " + r.data());
      x.put("mbPerSec", Math.round(r.mbPerSec()));
      x.put("iperf3MbPerSec", Math.round(r.iperf3MbPerSec()));
      x.put("ratioToIperf3", Math.round(r.ratioToIperf3() * 100) / 100.0);
      x.put("originalBytes", r.originalBytes());
      x.put("wireBytes", r.wireBytes());
      x.put("runsMbPerSec", r.runsMbPerSec().stream().map(Math::round).toList());
      return x;
    }).toList());
    Files.createDirectories(out.toAbsolutePath().getParent());
    Json.writeFile(out, doc);
    Path md = out.resolveSibling(out.getFileName().toString().replaceAll("\\.json$", "") + ".md");
    Files.writeString(md, markdown(rows));
    System.out.println("JSON: " + out + "\nMarkdown: " + md);
    return 0;
  }

  private static void measure(Map<String, List<double[]>> m, String name, double[] v) {
    m.computeIfAbsent(name, k -> new ArrayList<>()).add(v);
  }

  private static Row row(String name, String data, List<double[]> v, long bytes) {
    double rate = median(v.stream().map(x -> x[0]).toList());
    double iperf = median(v.stream().map(x -> x[2]).toList());
    long wire = Math.round(median(v.stream().map(x -> x[1]).toList()));
    return new Row(name, data, rate, iperf, rate / iperf, name.startsWith("iperf3") ? 0 : bytes, wire,
        v.stream().map(x -> x[0]).toList());
  }

  private static double median(List<Double> xs) {
    List<Double> s = new ArrayList<>(xs);
    s.sort(null);
    int n = s.size();
    return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
  }

  /** iperf3's single-stream rate host-a to host-b, MB/s. */
  private static double iperf3(LabConfig.HostEntry a, LabConfig.HostEntry b) throws Exception {
    Process server = new ProcessBuilder(Netns.in(b.netns(), "iperf3", "-s", "-1", "-p", "5201"))
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    try {
      Thread.sleep(300);
      String j = Exec.checked(Netns.in(a.netns(), "iperf3", "-c", b.ip(), "-p", "5201", "-t", "4", "-J")).stdout();
      return Json.read(j, JsonNode.class).path("end").path("sum_received").path("bits_per_second").asDouble() / 8e6;
    } finally {
      server.destroy();
      server.waitFor(5, TimeUnit.SECONDS);
    }
  }

  /** tar piped into socat on host-a, socat into tar on host-b: original MB/s, from start to the last byte landed. */
  private static double tarSocat(LabConfig.HostEntry a, LabConfig.HostEntry b, Path src, Path dst, long bytes)
      throws Exception {
    Files2.deleteTree(dst);
    Files.createDirectories(dst);
    Process recv = new ProcessBuilder(Netns.in(b.netns(), "sh", "-c", "socat -u TCP-LISTEN:" + PORT + ",reuseaddr - | tar -x -C "
        + dst)).redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    Thread.sleep(300);
    long t0 = System.nanoTime();
    Exec.checked(Netns.in(a.netns(), "sh", "-c", "tar -c -C " + src + " . | socat -u - TCP:" + b.ip() + ":" + PORT));
    if (!recv.waitFor(120, TimeUnit.SECONDS) || recv.exitValue() != 0) {
      recv.destroyForcibly();
      throw new IOException("tar|socat receiver failed");
    }
    double s = (System.nanoTime() - t0) / 1e9;
    Files2.deleteTree(dst);
    return bytes / s / 1e6;
  }

  /**
   * Ferry's sender on a thread in host-a's namespace, its receivers (one per connection, as an
   * agent's data port has them) on threads in host-b's (the sockets belong to the namespaces they
   * were made in): original MB/s until the last receiver's verdict, and the bytes that went on
   * the wire.
   */
  private static double[] ferry(LabConfig.HostEntry a, LabConfig.HostEntry b, PeerTls tlsA, PeerTls tlsB, Path src,
      Path dst, long bytes, Compression comp, int streams) throws Exception {
    Files2.deleteTree(dst);
    ServerSocket server = NetnsSocket.inNamespace(b.netns(), () -> tlsB.listen(b.ip(), PORT, streams));
    ExecutorService receivers = Executors.newFixedThreadPool(streams);
    try (server) {
      ResumableTransfers resumable = new ResumableTransfers();
      List<CompletableFuture<String>> received = new ArrayList<>();
      for (int k = 0; k < streams; k++) {
        received.add(CompletableFuture.supplyAsync(() -> {
          try (Socket s = server.accept()) {
            // as an agent's data server receives (over plain TCP: from the socket's channel)
            return new ImageReceiver((id, inc) -> dst, resumable).receive(s, new byte[0], s, new TransferProgress(), x -> {});
          } catch (IOException e) {
            throw new RuntimeException(e);
          }
        }, receivers));
      }
      ParallelSender sender = new ParallelSender(streams, false, 0, comp, null);
      long t0 = System.nanoTime();
      try {
        // Java makes a socket's descriptor when it connects: connect inside the namespace too
        sender.send("bench", List.of(new TransferSource(src, "images")), null,
            () -> NetnsSocket.inNamespace(a.netns(), () -> tlsA.connect(b.ip() + ":" + PORT, 5000)), 0,
            new TransferProgress());
      } catch (IOException e) {
        for (CompletableFuture<String> r : received) {
          try {
            r.get(10, TimeUnit.SECONDS);
          } catch (java.util.concurrent.ExecutionException x) {
            throw new IOException("receiver on " + b.name() + ": " + x.getCause().getMessage(), e);
          }
        }
        throw e;
      }
      for (CompletableFuture<String> r : received) {
        r.get(60, TimeUnit.SECONDS);
      }
      double s = (System.nanoTime() - t0) / 1e9;
      if (Files.mismatch(src.resolve("pages-1.img"), dst.resolve("images/pages-1.img")) != -1) {
        throw new IOException("the received image differs from the sent one");
      }
      Files2.deleteTree(dst);
      return new double[] {bytes / s / 1e6, sender.wireStats().wireBytes()};
    } finally {
      receivers.shutdownNow();
    }
  }

  /**
   * Runs redis-server in host-a's namespace, fills it with ~{@code bytes} of values (DEBUG
   * POPULATE: keys and values as an application would store them), and copies its writable
   * private memory that is present (the pages a checkpoint would carry: /proc/PID/pagemap says
   * which) from /proc/PID/mem into {@code out}.
   */
  private static long redisMemory(LabConfig.HostEntry a, Path out, long bytes) throws Exception {
    Process redis = new ProcessBuilder(Netns.in(a.netns(), "redis-server", "--port", "6391", "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--enable-debug-command", "yes", "--protected-mode", "no"))
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    try {
      for (int i = 0; i < 50 && !Exec.run(Netns.in(a.netns(), "redis-cli", "-p", "6391", "ping")).ok(); i++) {
        Thread.sleep(100);
      }
      long keys = bytes / 600; // values of 512 bytes, plus keys and Redis's own per-key memory
      Exec.checked(Netns.in(a.netns(), "redis-cli", "-p", "6391", "DEBUG", "POPULATE", Long.toString(keys), "key", "512"));
      long pid = redis.toHandle().descendants().map(ProcessHandle::pid).reduce((x, y) -> y).orElse(redis.pid());
      long written = 0;
      try (RandomAccessFile mem = new RandomAccessFile("/proc/" + pid + "/mem", "r");
          RandomAccessFile pagemap = new RandomAccessFile("/proc/" + pid + "/pagemap", "r");
          var o = Files.newOutputStream(out)) {
        byte[] buf = new byte[1 << 20];
        byte[] entries = new byte[(buf.length / 4096) * 8];
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/maps"))) {
          String[] f = line.split("\\s+");
          if (!f[1].startsWith("rw") || f[1].charAt(3) != 'p' || (f.length > 5 && f[5].startsWith("/"))) {
            continue; // anonymous writable private memory only (heap, arenas, stacks)
          }
          String[] r = f[0].split("-");
          long from = Long.parseUnsignedLong(r[0], 16);
          long to = Long.parseUnsignedLong(r[1], 16);
          for (long p = from; p < to && written < bytes; p += buf.length) {
            int n = (int) Math.min(buf.length, Math.min(to - p, bytes - written));
            try {
              pagemap.seek(p / 4096 * 8);
              pagemap.readFully(entries, 0, n / 4096 * 8);
              mem.seek(p);
              mem.readFully(buf, 0, n);
            } catch (IOException e) {
              break; // a guard page or a mapping that went away
            }
            for (int pg = 0; pg < n / 4096; pg++) {
              if ((entries[pg * 8 + 7] & 0x80) != 0) { // bit 63: present in RAM
                o.write(buf, pg * 4096, 4096);
                written += 4096;
              }
            }
          }
        }
      }
      return written;
    } finally {
      redis.destroy();
      redis.waitFor(5, TimeUnit.SECONDS);
    }
  }

  private static String markdown(List<Row> rows) {
    StringBuilder s = new StringBuilder("| data | case | MB/s (original bytes) | iperf3 MB/s, same run | ratio to iperf3 |"
        + " bytes on the wire / original |\n|---|---|---:|---:|---:|---:|\n");
    for (Row r : rows) {
      s.append(String.format("| %s | %s | %.0f | %.0f | %.2f | %s |%n", r.data(), r.caseName(), r.mbPerSec(),
          r.iperf3MbPerSec(), r.ratioToIperf3(), r.originalBytes() == 0 ? "" : String.format("%.3f",
              (double) r.wireBytes() / r.originalBytes())));
    }
    return s.toString();
  }
}
