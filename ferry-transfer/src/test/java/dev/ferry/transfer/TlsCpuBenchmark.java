package dev.ferry.transfer;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a transfer costs in CPU over plain TCP, over mutual TLS through JSSE ({@code SSLSocket}s)
 * and through BoringSSL ({@link TlsChannel}): sender and receiver in this one JVM over loopback,
 * {@code ferry.bench.tls.mib} MiB (256) of incompressible data, compression off and auto; every
 * case warmed up untimed first ({@code .warmup} rounds, 4), then {@code .runs} (5) timed rounds,
 * cases interleaved round by round. CPU: the process's CPU time (all threads: both ends, GC, JIT)
 * per GiB moved; medians. Not part of the normal test run: its name matches no test pattern, and
 * it runs only when {@code ferry.bench.tls.out} names a directory (it writes {@code tls-cpu.md}
 * there). See {@code bench/tls-cpu.sh}.
 */
@EnabledIfSystemProperty(named = "ferry.bench.tls.out", matches = ".+")
class TlsCpuBenchmark {
  @TempDir Path tmp;

  private record Case(String name, PeerTls client, PeerTls server, Compression compression) {}

  private record Run(double cpuSeconds, double wallSeconds, long bytes) {}

  @Test
  void cpuPerGiB() throws Exception {
    int mib = Integer.getInteger("ferry.bench.tls.mib", 256);
    int warmup = Integer.getInteger("ferry.bench.tls.warmup", 4);
    int runs = Integer.getInteger("ferry.bench.tls.runs", 5);
    Path out = Path.of(System.getProperty("ferry.bench.tls.out"));
    Path src = TreeAssertions.incompressibleTree(tmp.resolve("src"), "pages-1.img", mib);
    LabCa ca = LabCa.ensure(tmp.resolve("ca"), "bench lab");
    ca.issue(tmp.resolve("a"), "host-a", "127.0.0.1");
    ca.issue(tmp.resolve("b"), "host-b", "127.0.0.1");
    List<Case> cases = new ArrayList<>();
    for (Compression c : List.of(Compression.OFF, Compression.AUTO)) {
      String comp = c.name().toLowerCase(Locale.ROOT);
      cases.add(new Case("plain TCP, " + comp, PeerTls.PLAIN, PeerTls.PLAIN, c));
      cases.add(new Case("TLS, JSSE, " + comp, PeerTls.load(tmp.resolve("a"), false), PeerTls.load(tmp.resolve("b"), false), c));
      cases.add(new Case("TLS, BoringSSL, " + comp, PeerTls.load(tmp.resolve("a"), true), PeerTls.load(tmp.resolve("b"), true), c));
    }
    for (int i = 0; i < warmup; i++) {
      for (Case k : cases) {
        once(k, src);
      }
    }
    List<List<Run>> results = new ArrayList<>();
    cases.forEach(k -> results.add(new ArrayList<>()));
    for (int i = 0; i < runs; i++) {
      for (int j = 0; j < cases.size(); j++) {
        Run r = once(cases.get(j), src);
        results.get(j).add(r);
        System.out.printf(Locale.ROOT, "[bench] %s, run %d: %.3f CPU-s/GiB, %.0f MB/s%n", cases.get(j).name(), i + 1,
            r.cpuSeconds() / (r.bytes() / 1073741824.0), r.bytes() / r.wallSeconds() / 1e6);
      }
    }
    String md = markdown(cases, results, mib, warmup, runs);
    System.out.println(md);
    Files.createDirectories(out);
    Files.writeString(out.resolve("tls-cpu.md"), md);
  }

  private Run once(Case k, Path src) throws Exception {
    Path dst = tmp.resolve("dst");
    try (ServerSocket server = k.server().listen("127.0.0.1", 0, 1)) {
      TransferProgress received = new TransferProgress();
      long cpu0 = cpuNanos();
      long t0 = System.nanoTime();
      CompletableFuture<String> rx = CompletableFuture.supplyAsync(() -> {
        try (Socket s = server.accept()) {
          return new ImageReceiver((id, inc) -> dst).receive(s, new byte[0], s, received, b -> {});
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
      });
      try (Socket c = k.client().connect("127.0.0.1:" + server.getLocalPort(), 5000)) {
        new ImageSender(false, 0, k.compression()).send("m-1", List.of(new TransferSource(src, "b")), c,
            new TransferProgress());
      }
      rx.get(120, TimeUnit.SECONDS);
      Run r = new Run((cpuNanos() - cpu0) / 1e9, (System.nanoTime() - t0) / 1e9, received.bytes());
      Files.delete(dst.resolve("b/pages-1.img"));
      return r;
    }
  }

  private static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  private static double median(List<Run> runs, java.util.function.ToDoubleFunction<Run> f) {
    List<Double> v = runs.stream().map(f::applyAsDouble).sorted(Comparator.naturalOrder()).toList();
    int n = v.size();
    return n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
  }

  private static String markdown(List<Case> cases, List<List<Run>> results, int mib, int warmup, int runs) {
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "# CPU per GiB moved: plain TCP, JSSE TLS, BoringSSL TLS%n%n"
        + "Sender and receiver in one JVM (%s %s, full JIT, %d CPUs) over loopback, %d MiB of incompressible data per"
        + " transfer, written to a file on the receiving side; %d untimed rounds of every case first, then %d timed"
        + " rounds, cases interleaved. CPU: the process's CPU time (both ends, GC, JIT) per GiB; medians, with the range."
        + " Load at the end: %.1f.%n%n", System.getProperty("java.vm.name"), System.getProperty("java.version"),
        Runtime.getRuntime().availableProcessors(), mib, warmup, runs,
        ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()));
    b.append("| case | CPU-s/GiB (median) | range | MB/s (median) |\n|---|---:|---:|---:|\n");
    for (int i = 0; i < cases.size(); i++) {
      List<Run> rs = results.get(i);
      java.util.function.ToDoubleFunction<Run> cpu = r -> r.cpuSeconds() / (r.bytes() / 1073741824.0);
      double lo = rs.stream().mapToDouble(cpu).min().orElse(0);
      double hi = rs.stream().mapToDouble(cpu).max().orElse(0);
      b.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f-%.2f | %.0f |%n", cases.get(i).name(), median(rs, cpu), lo, hi,
          median(rs, r -> r.bytes() / r.wallSeconds() / 1e6)));
    }
    return b.toString();
  }
}
