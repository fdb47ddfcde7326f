package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

class HostCapabilitiesTest {
  private static HostCapabilities caps(String version, boolean check, String lock) {
    return new HostCapabilities("/x/criu", version, check, check ? "" : "vdso: Unexpected rt vDSO area bounds", false, true,
        lock, false, Map.of("CRIU_FAULT", "130"));
  }

  @Test
  void criuOlderThan42IsRefusedWithTheReason() {
    assertThat(caps("3.17.1", true, "iptables").criuUsable()).isFalse();
    assertThat(caps("4.1.1", true, "iptables").unusableReason()).contains("4.1.1 is too old, need >= 4.2");
    assertThat(caps("4.2.1", true, "iptables").criuUsable()).isTrue();
    assertThat(caps("5.0", true, "iptables").criuUsable()).isTrue();
  }

  @Test
  void failingCheckMissingBinaryAndMissingLockAreExplained() {
    assertThat(caps("4.2.1", false, "iptables").unusableReason()).contains("criu check").contains("vDSO");
    assertThat(caps(null, false, "none").unusableReason()).contains("not found").contains("setup-host.sh");
    assertThat(caps("4.2.1", true, "none").unusableReason()).contains("install iptables");
  }

  @Test
  void hostVethNamesFitIfnamsizAndDiffer() {
    String a = new PodNetwork("lab-host-a-redis", "br0").hostVeth();
    String b = new PodNetwork("lab-host-b-redis", "br0").hostVeth();
    assertThat(a).hasSizeLessThanOrEqualTo(15).isNotEqualTo(b);
  }
}
