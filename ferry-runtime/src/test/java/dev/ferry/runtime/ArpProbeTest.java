package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HexFormat;
import org.junit.jupiter.api.Test;

class ArpProbeTest {
  @Test
  void buildsABroadcastArpRequestAsRfc826Says() {
    byte[] mac = HexFormat.ofDelimiter(":").parseHex("02:fa:00:00:00:64");
    byte[] f = ArpProbe.request(mac, new byte[] {10, 77, 0, 100}, new byte[] {10, 77, 1, 2});
    String hex = HexFormat.of().formatHex(f);
    assertThat(f).hasSize(60); // padded to Ethernet's minimum frame
    assertThat(hex).startsWith("ffffffffffff" + "02fa00000064" + "0806" // broadcast, from us, ARP
        + "0001" + "0800" + "06" + "04" + "0001"                       // Ethernet/IPv4, request
        + "02fa00000064" + "0a4d0064"                                  // sender MAC and IP
        + "000000000000" + "0a4d0102");                                // target: who has 10.77.1.2?
  }
}
