package dev.ferry.cli.demo;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Who answered for an IP, sample by sample. A sample begins with an ARP request the prober
 * sent (seen entering the lab bridge from the client's port) and lasts until the next one;
 * every ARP reply for the IP that enters the bridge from a host's port in that time counts
 * that host as an owner. The pod's MAC moves with it, so replies are told apart by the port
 * they come in on (one per host), not by their MAC: two hosts answering are two owners even
 * with one MAC.
 */
public final class IpOwnerSamples {
  /** One frame seen by the capture: a request of the prober's, or a reply from behind {@code port}. */
  public record Frame(long micros, String port, boolean request) {}

  /** One sample: when it began and which hosts answered in it. */
  public record Sample(long micros, Set<String> owners) {}

  /** What the samples say. */
  public record Summary(int samples, double hz, int ownersMax, List<String> sequence, long unownedMaxMs,
      List<Sample> all) {}

  private IpOwnerSamples() {}

  /**
   * Parses one line of {@code tcpdump -i any -n -tt -Q in arp} into a frame about {@code ip}, or
   * null: "T PORT DIR ARP, Request who-has IP tell ..." from {@code clientPort}, or "T PORT DIR
   * ARP, Reply IP is-at ..." from any port.
   */
  public static Frame parse(String line, String ip, String clientPort) {
    String[] t = line.strip().split("\\s+");
    if (t.length < 7 || !t[3].equals("ARP,")) {
      return null;
    }
    long micros;
    try {
      micros = Math.round(Double.parseDouble(t[0]) * 1e6);
    } catch (NumberFormatException e) {
      return null;
    }
    if (t[4].equals("Request") && t[5].equals("who-has") && t[6].equals(ip) && t[1].equals(clientPort)) {
      return new Frame(micros, t[1], true);
    }
    if (t[4].equals("Reply") && t[5].equals(ip) && !t[1].equals(clientPort)) {
      return new Frame(micros, t[1], false);
    }
    return null;
  }

  /**
   * Splits frames (in capture order) into samples and names owners by host: port "h-HOST" is
   * HOST. The last request opens no sample (its answers may be cut off by the end of the capture).
   */
  public static Summary summarize(List<Frame> frames) {
    List<Sample> samples = new ArrayList<>();
    Sample open = null;
    for (Frame f : frames) {
      if (f.request()) {
        if (open != null) {
          samples.add(open);
        }
        open = new Sample(f.micros(), new TreeSet<>());
      } else if (open != null) {
        open.owners().add(f.port().startsWith("h-") ? f.port().substring(2) : f.port());
      }
    }
    int max = 0;
    Set<String> seq = new LinkedHashSet<>();
    List<String> sequence = new ArrayList<>();
    long unownedMax = 0;
    Long unownedSince = null;
    for (Sample s : samples) {
      max = Math.max(max, s.owners().size());
      if (s.owners().isEmpty()) {
        unownedSince = unownedSince == null ? s.micros() : unownedSince;
      } else {
        if (unownedSince != null) {
          unownedMax = Math.max(unownedMax, s.micros() - unownedSince);
          unownedSince = null;
        }
        String who = String.join("+", s.owners());
        if (sequence.isEmpty() || !sequence.get(sequence.size() - 1).equals(who)) {
          sequence.add(who);
        }
        seq.add(who);
      }
    }
    double hz = samples.size() < 2 ? 0
        : (samples.size() - 1) / ((samples.get(samples.size() - 1).micros() - samples.get(0).micros()) / 1e6);
    return new Summary(samples.size(), hz, max, sequence, unownedMax / 1000, samples);
  }
}
