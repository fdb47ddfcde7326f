package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.PodIdentity;
import dev.ferry.api.PodSpec;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MigrationStoreTest {
  @TempDir Path dir;

  private static PodRecord pod(String name, String uid, String ip, String host) {
    return new PodRecord(new PodSpec(new PodIdentity(uid, name, ip, 16, Coordinator.macFor(ip)),
        List.of(new ContainerSpec("app", List.of("sleep", "9"), List.of())), 64, 0), host, "running");
  }

  @Test
  void anIpNameOrUidNeverHasTwoOwners() {
    try (MigrationStore s = new MigrationStore(dir)) {
      s.insertPod(pod("a", "u1", "10.77.1.2", "host-a"));
      assertThatThrownBy(() -> s.insertPod(pod("b", "u2", "10.77.1.2", "host-b"))).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> s.insertPod(pod("a", "u3", "10.77.1.3", "host-b"))).isInstanceOf(IllegalStateException.class);
      assertThatThrownBy(() -> s.insertPod(pod("c", "u1", "10.77.1.4", "host-b"))).isInstanceOf(IllegalStateException.class);
      assertThat(s.pods()).hasSize(1);
    }
  }

  @Test
  void commitMovesTheOwnerAndSurvivesAReopen() {
    try (MigrationStore s = new MigrationStore(dir)) {
      s.insertPod(pod("a", "u1", "10.77.1.2", "host-a"));
      s.insertMigration(new MigrationRecord("m1", "a", "host-a", "host-b", "cold", MigrationPhase.PENDING, false, 1, 1, 1, null, null));
      s.stepStatus("m1", "prepare-target", "started");
      s.stepStatus("m1", "prepare-target", "done");
      s.stepStatus("m1", "checkpoint", "started");
      s.commit("m1", "a", "host-b");
    }
    try (MigrationStore s = new MigrationStore(dir)) {
      assertThat(s.pod("a").orElseThrow().host()).isEqualTo("host-b");
      MigrationRecord m = s.migration("m1").orElseThrow();
      assertThat(m.committed()).isTrue();
      assertThat(m.phase()).isEqualTo(MigrationPhase.CUTOVER);
      assertThat(s.steps("m1")).containsExactly(
          java.util.Map.entry("prepare-target", "done"), java.util.Map.entry("checkpoint", "started"));
    }
  }

  @Test
  void onlyOneOfTwoConcurrentMigrationsClaimsThePod() {
    try (MigrationStore s = new MigrationStore(dir)) {
      s.insertPod(pod("a", "u1", "10.77.1.2", "host-a"));
      assertThat(s.compareAndSetPodState("a", "running", "migrating")).isTrue();
      assertThat(s.compareAndSetPodState("a", "running", "migrating")).isFalse();
      assertThat(s.pod("a").orElseThrow().state()).isEqualTo("migrating");
    }
  }

  @Test
  void macsAreLocallyAdministeredAndFollowTheIp() {
    assertThat(Coordinator.macFor("10.77.1.2")).isEqualTo("02:fe:0a:4d:01:02");
    assertThat(Coordinator.macFor("10.77.1.3")).isNotEqualTo(Coordinator.macFor("10.77.1.2"));
  }
}
