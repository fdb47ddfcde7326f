package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class MigratabilityTest {
  @Test
  void theDevicesRuncGivesEveryContainerMoveOthersDoNot() {
    for (String d : new String[] {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/pts/0", "/dev/ptmx", "/dev/shm/x"}) {
      assertThat(Migratability.isExternalDevice(d)).as(d).isFalse();
    }
    for (String d : new String[] {"/dev/fuse", "/dev/net/tun", "/dev/kvm", "/dev/sda", "/dev/nvidia0"}) {
      assertThat(Migratability.isExternalDevice(d)).as(d).isTrue();
    }
    assertThat(Migratability.isExternalDevice("/data/dev/x")).isFalse();
    assertThat(Migratability.isExternalDevice("socket:[1234]")).isFalse();
  }
}
