package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The sandbox's network lock in a namespace of the test's own (no interface, nothing of the
 * machine's network touched): an unlock made ready ahead opens it when applied and changes
 * nothing when dropped.
 */
class PodNetworkLockTest {
  private final String ns = "ferry-locktest-" + ProcessHandle.current().pid();
  private final PodNetwork net = new PodNetwork(ns, "unused");

  @BeforeEach
  void namespace() {
    assumeTrue("root".equals(System.getProperty("user.name")), "network namespaces need root");
    Netns.add(ns);
  }

  @AfterEach
  void removeNamespace() {
    if (Netns.exists(ns)) {
      Netns.delete(ns);
    }
  }

  private String inChain() {
    return Exec.checked(Netns.in(ns, "iptables", "-S", PodNetwork.IN_CHAIN)).stdout();
  }

  @Test
  void aPreparedUnlockOpensTheLockWhenApplied() throws Exception {
    net.lock();
    assertThat(inChain()).contains("-j DROP");
    try (PodNetwork.PreparedUnlock u = net.prepareUnlock()) {
      Thread.sleep(200); // started and waiting: the lock holds meanwhile
      assertThat(inChain()).contains("-j DROP");
      assertThat(u.apply()).as("the prepared process removed the rules (not the fallback)").isTrue();
      assertThat(u.alive()).isFalse();
    }
    assertThat(inChain()).doesNotContain("-j DROP");
    assertThat(Exec.run(Netns.in(ns, "iptables", "-S", PodNetwork.OUT_CHAIN)).stdout()).doesNotContain("-j DROP");
  }

  @Test
  void aPreparedUnlockDroppedUnappliedLeavesTheLockAndNoProcess() throws Exception {
    net.lock();
    PodNetwork.PreparedUnlock u = net.prepareUnlock();
    Thread.sleep(200);
    assertThat(u.alive()).isTrue(); // waiting for its input
    u.close();
    Thread.sleep(200);
    assertThat(inChain()).contains("-j DROP");
    assertThat(u.alive()).isFalse();
  }
}
