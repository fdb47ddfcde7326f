package dev.ferry.cli.demo;

import dev.ferry.api.MigrationReport;
import dev.ferry.lab.Lab;
import dev.ferry.runtime.ArpProbe;
import dev.ferry.runtime.Netns;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Asks, from the lab's client namespace, who answers for a pod's IP, {@code hz} times a
 * second: an ARP request out of the client's interface per sample (asked again every
 * millisecond of the sample's slot while nobody answers), and a capture on the lab
 * bridge (tcpdump in the bridge's namespace) that sees on which host's port each reply comes
 * in. See {@link IpOwnerSamples} for how samples are counted. Touches only the lab's
 * namespaces; {@link #stop} ends both.
 */
public final class IpOwnerProber implements AutoCloseable {
  private final Process capture;
  private final Thread reader;
  private final Thread sender;
  private final List<IpOwnerSamples.Frame> frames = Collections.synchronizedList(new ArrayList<>());
  private volatile boolean running = true;
  private volatile IOException sendError;

  private IpOwnerProber(Lab lab, String ip, int hz) throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(Netns.in(lab.config().bridgeNs(), "tcpdump", "-i", "any", "-l", "-n", "-tt",
        "-Q", "in", "arp"));
    capture = pb.start();
    BufferedReader err = new BufferedReader(new InputStreamReader(capture.getErrorStream(), StandardCharsets.UTF_8));
    String first = err.readLine(); // "listening on any, ..." once it captures
    for (int i = 0; i < 5 && first != null && !first.contains("listening"); i++) {
      first = err.readLine(); // "data link type ..." comes first
    }
    if (first == null || !first.contains("listening")) {
      capture.destroyForcibly();
      throw new IOException("tcpdump did not start in " + lab.config().bridgeNs() + ": " + first);
    }
    reader = new Thread(() -> read(ip), "ferry-ip-owner-capture");
    reader.setDaemon(true);
    reader.start();
    ArpProbe probe = ArpProbe.open(lab.config().clientNs(), "eth0", lab.config().clientIp(), ip);
    long periodNs = 1_000_000_000L / hz;
    sender = new Thread(() -> {
      try (probe) {
        long next = System.nanoTime();
        while (running) {
          ask(probe, next + periodNs - REASK_NS);
          next += periodNs;
          LockSupport.parkNanos(next - System.nanoTime());
        }
      } catch (IOException e) {
        sendError = e;
      }
    }, "ferry-ip-owner-probe");
    sender.setDaemon(true);
    sender.start();
  }

  /** How long a question waits for an answer before it is asked again. */
  private static final long REASK_NS = 1_000_000;

  /**
   * One sample's question: asked, and asked again every millisecond while nobody answers, until
   * {@code lastAskNs} (the sample's slot ends a millisecond after).
   */
  private static void ask(ArpProbe probe, long lastAskNs) throws IOException {
    probe.drain();
    int asked = 0;
    do {
      probe.send(asked++);
    } while (!probe.awaitReply((int) (REASK_NS / 1_000_000)) && System.nanoTime() < lastAskNs);
  }

  /** Starts probing who answers for {@code ip} at {@code hz} samples a second. */
  public static IpOwnerProber start(Lab lab, String ip, int hz) throws IOException, InterruptedException {
    if (hz < 1 || hz > 1000) {
      throw new IllegalArgumentException("probe rate " + hz + " Hz is out of range (1 .. 1000)");
    }
    return new IpOwnerProber(lab, ip, hz);
  }

  private void read(String ip) {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(capture.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        IpOwnerSamples.Frame f = IpOwnerSamples.parse(line, ip, "c-client");
        if (f != null) {
          frames.add(f);
        }
      }
    } catch (IOException e) {
      // capture ended
    }
  }

  /** Stops probing and says what the samples showed. */
  public IpOwnerSamples.Summary stop() throws IOException, InterruptedException {
    running = false;
    sender.join(2000);
    Thread.sleep(100); // the last replies reach the capture
    capture.destroy();
    if (!capture.waitFor(5, TimeUnit.SECONDS)) {
      capture.destroyForcibly();
    }
    reader.join(2000);
    if (sendError != null) {
      throw sendError;
    }
    synchronized (frames) {
      return IpOwnerSamples.summarize(new ArrayList<>(frames));
    }
  }

  /** Puts a summary into the report's fields. */
  public static void fill(MigrationReport r, IpOwnerSamples.Summary s) {
    r.ipOwnersMax = s.ownersMax();
    r.ipOwnersMin = s.ownersMin();
    r.ipOwnerSamples = (long) s.samples();
    r.ipOwnerHz = Math.round(s.hz() * 10) / 10.0;
    r.ipOwnerSequence = s.sequence();
    r.ipUnownedMaxMs = s.unownedMaxMs();
  }

  @Override
  public void close() {
    running = false;
    capture.destroyForcibly();
  }
}
