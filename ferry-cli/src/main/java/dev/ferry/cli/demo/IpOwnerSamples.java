package dev.ferry.cli.demo;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Who answered for an IP, sample by sample. A sample is one question "who has this IP?": an ARP
 * request of the prober's (seen entering the lab bridge from the client's port), asked again
 * every millisecond while nobody answers, as a resolver does, within the sample's slot. It
 * lasts until the next sample's first request; every ARP reply for the IP that enters the bridge
 * from a host's port in that time counts that host as an owner. The pod's MAC moves with it, so
 * replies are told apart by the port they come in on (one per host), not by their MAC: two
 * hosts answering are two owners even with one MAC. A re-asked request carries its count in the
 * target hardware address, which requests leave unused and tcpdump prints when it is not zero.
 */
public final class IpOwnerSamples {
  /**
   * One frame seen by the capture: a request of the prober's (a re-ask when {@code reask}), or
   * a reply from behind {@code port}.
   */
  public record Frame(long micros, String port, boolean request, boolean reask) {
    public Frame(long micros, String port, boolean request) {
      this(micros, port, request, false);
    }
  }

  /** One sample: when it began, which hosts answered in it, and how many requests it took. */
  public record Sample(long micros, Set<String> owners, int requests) {}

  /**
   * What the samples say.
   *
   * @param ownersMax most hosts answering in one sample (a duplicate IP when above 1)
   * @param ownersMin fewest hosts answering in one sample (0: a sample nobody answered)
   * @param unownedMaxMs longest time from a request nobody answered to the next answered one
   */
  public record Summary(int samples, double hz, int ownersMax, int ownersMin, List<String> sequence, long unownedMaxMs,
      List<Sample> all) {}

  private IpOwnerSamples() {}

  /**
   * Parses one line of {@code tcpdump -i any -n -tt -Q in arp} into a frame about {@code ip}, or
   * null: "T PORT DIR ARP, Request who-has IP [(MAC)] tell ..." from {@code clientPort}, or
   * "T PORT DIR ARP, Reply IP is-at ..." from any port.
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
      return new Frame(micros, t[1], true, t.length > 7 && t[7].startsWith("("));
    }
    if (t[4].equals("Reply") && t[5].equals(ip) && !t[1].equals(clientPort)) {
      return new Frame(micros, t[1], false);
    }
    return null;
  }

  /** One request and the hosts that answered before the next request. */
  private record Asked(long micros, boolean reask, Set<String> owners) {}

  /**
   * Splits frames (in capture order) into samples and names owners by host: port "h-HOST" is
   * HOST. The last sample is left out (its answers may be cut off by the end of the capture).
   */
  public static Summary summarize(List<Frame> frames) {
    List<Asked> asked = new ArrayList<>();
    for (Frame f : frames) {
      if (f.request()) {
        asked.add(new Asked(f.micros(), f.reask(), new TreeSet<>()));
      } else if (!asked.isEmpty()) {
        asked.get(asked.size() - 1).owners().add(f.port().startsWith("h-") ? f.port().substring(2) : f.port());
      }
    }
    List<Sample> samples = new ArrayList<>();
    Sample open = null;
    for (Asked a : asked) {
      if (!a.reask() || open == null) {
        if (open != null) {
          samples.add(open);
        }
        open = new Sample(a.micros(), new TreeSet<>(), 0);
      }
      open.owners().addAll(a.owners());
      open = new Sample(open.micros(), open.owners(), open.requests() + 1);
    }
    int max = 0;
    int min = samples.isEmpty() ? 0 : Integer.MAX_VALUE;
    List<String> sequence = new ArrayList<>();
    for (Sample s : samples) {
      max = Math.max(max, s.owners().size());
      min = Math.min(min, s.owners().size());
      if (!s.owners().isEmpty()) {
        String who = String.join("+", s.owners());
        if (sequence.isEmpty() || !sequence.get(sequence.size() - 1).equals(who)) {
          sequence.add(who);
        }
      }
    }
    double hz = samples.size() < 2 ? 0
        : (samples.size() - 1) / ((samples.get(samples.size() - 1).micros() - samples.get(0).micros()) / 1e6);
    return new Summary(samples.size(), hz, max, min, sequence, unownedMaxMicros(asked) / 1000, samples);
  }

  /** Longest time from a request nobody answered to the next request somebody did. */
  private static long unownedMaxMicros(List<Asked> asked) {
    long max = 0;
    Long since = null;
    for (int i = 0; i < asked.size() - 1; i++) { // the last one's answers may be cut off
      Asked a = asked.get(i);
      if (a.owners().isEmpty()) {
        since = since == null ? a.micros() : since;
      } else if (since != null) {
        max = Math.max(max, a.micros() - since);
        since = null;
      }
    }
    return max;
  }
}
