package dev.ferry.cli.demo;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class IpOwnerSamplesTest {
  private static final String IP = "10.77.1.2";

  private static List<IpOwnerSamples.Frame> parse(String... lines) {
    List<IpOwnerSamples.Frame> out = new ArrayList<>();
    for (String l : lines) {
      IpOwnerSamples.Frame f = IpOwnerSamples.parse(l, IP, "c-client");
      if (f != null) {
        out.add(f);
      }
    }
    return out;
  }

  @Test
  void parsesTcpdumpLinesAboutTheIpOnly() {
    List<IpOwnerSamples.Frame> f = parse(
        "1795794874.000000 c-client B   ARP, Request who-has 10.77.1.2 tell 10.77.0.100, length 28",
        "1795794874.000100 h-host-a P   ARP, Reply 10.77.1.2 is-at 02:fe:0a:4d:01:02, length 28",
        "1795794874.000200 h-host-b B   ARP, Request who-has 10.77.1.2 (ff:ff:ff:ff:ff:ff) tell 10.77.1.2, length 28",
        "1795794874.000300 h-host-b P   ARP, Reply 10.77.1.3 is-at 02:fe:0a:4d:01:03, length 28",
        "1795794874.000400 c-client B   ARP, Request who-has 10.77.1.3 tell 10.77.0.100, length 28",
        "garbage");
    assertThat(f).containsExactly(new IpOwnerSamples.Frame(1795794874000000L, "c-client", true),
        new IpOwnerSamples.Frame(1795794874000100L, "h-host-a", false));
  }

  @Test
  void countsHostsPerSampleAndSeesADuplicateEvenWithOneMac() {
    List<IpOwnerSamples.Frame> f = new ArrayList<>();
    long t = 0;
    String[][] answers = {{"h-host-a"}, {"h-host-a"}, {}, {}, {"h-host-b"}, {"h-host-a", "h-host-b"}, {"h-host-b"}, {}};
    for (String[] a : answers) {
      f.add(new IpOwnerSamples.Frame(t, "c-client", true));
      for (String p : a) {
        f.add(new IpOwnerSamples.Frame(t + 100, p, false));
      }
      t += 5000;
    }
    IpOwnerSamples.Summary s = IpOwnerSamples.summarize(f);
    assertThat(s.samples()).isEqualTo(7); // the last request's answers may be cut off: no sample
    assertThat(s.ownersMax()).isEqualTo(2);
    assertThat(s.ownersMin()).isZero();
    assertThat(s.sequence()).containsExactly("host-a", "host-b", "host-a+host-b", "host-b");
    assertThat(s.unownedMaxMs()).isEqualTo(10);
    assertThat(s.hz()).isEqualTo(200.0);
  }

  @Test
  void aCleanHandOverHasOneOwnerAtATime() {
    List<IpOwnerSamples.Frame> f = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      f.add(new IpOwnerSamples.Frame(i * 10_000L, "c-client", true));
      if (i != 50) {
        f.add(new IpOwnerSamples.Frame(i * 10_000L + 50, i < 50 ? "h-host-a" : "h-host-b", false));
      }
    }
    IpOwnerSamples.Summary s = IpOwnerSamples.summarize(f);
    assertThat(s.ownersMax()).isEqualTo(1);
    assertThat(s.ownersMin()).isZero(); // sample 50: nobody answered
    assertThat(s.sequence()).containsExactly("host-a", "host-b");
  }

  @Test
  void aReaskAnsweredInItsSlotMakesTheSampleOwned() {
    List<IpOwnerSamples.Frame> f = parse(
        "1.000000 c-client B   ARP, Request who-has 10.77.1.2 tell 10.77.0.100, length 46",
        "1.000050 h-host-a P   ARP, Reply 10.77.1.2 is-at 02:fe:0a:4d:01:02, length 28",
        "1.010000 c-client B   ARP, Request who-has 10.77.1.2 tell 10.77.0.100, length 46",
        "1.011000 c-client B   ARP, Request who-has 10.77.1.2 (00:00:00:00:00:01) tell 10.77.0.100, length 46",
        "1.012000 c-client B   ARP, Request who-has 10.77.1.2 (00:00:00:00:00:02) tell 10.77.0.100, length 46",
        "1.012040 h-host-b P   ARP, Reply 10.77.1.2 is-at 02:fe:0a:4d:01:02, length 28",
        "1.020000 c-client B   ARP, Request who-has 10.77.1.2 tell 10.77.0.100, length 46",
        "1.020050 h-host-b P   ARP, Reply 10.77.1.2 is-at 02:fe:0a:4d:01:02, length 28",
        "1.030000 c-client B   ARP, Request who-has 10.77.1.2 tell 10.77.0.100, length 46");
    assertThat(f.get(3).reask()).isTrue();
    IpOwnerSamples.Summary s = IpOwnerSamples.summarize(f);
    assertThat(s.samples()).isEqualTo(3);
    assertThat(s.all().get(1).requests()).isEqualTo(3);
    assertThat(s.ownersMax()).isEqualTo(1);
    assertThat(s.ownersMin()).isEqualTo(1);
    assertThat(s.sequence()).containsExactly("host-a", "host-b");
    assertThat(s.unownedMaxMs()).isEqualTo(2); // asked at 10 ms, first answered at 12 ms
    assertThat(s.hz()).isEqualTo(100.0);
  }
}
