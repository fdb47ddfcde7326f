package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IpamTest {
  @TempDir Path dir;

  @Test
  void leasesTheLowestFreeAddressOncePerOwnerAndReusesReleasedOnes() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Ipam ipam = new Ipam(s);
      assertThat(ipam.lease("10.77.1.", "pod:a", "pod", "host-a")).isEqualTo("10.77.1.2");
      assertThat(ipam.lease("10.77.1.", "pod:b", "pod", "host-a")).isEqualTo("10.77.1.3");
      assertThat(ipam.lease("10.77.1.", "pod:a", "pod", "host-a")).as("idempotent per owner").isEqualTo("10.77.1.2");
      ipam.release("pod:a");
      assertThat(ipam.lease("10.77.1.", "placeholder:m1", "placeholder", "host-b")).isEqualTo("10.77.1.2");
      assertThat(ipam.leases()).extracting(Ipam.Lease::owner).containsExactly("placeholder:m1", "pod:b");
    }
  }

  @Test
  void aNewLeaseIsTheClaimOfAName() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Ipam ipam = new Ipam(s);
      assertThat(ipam.leaseNew("10.77.1.", "pod:a", "pod", "host-a")).isEqualTo("10.77.1.2");
      assertThatThrownBy(() -> ipam.leaseNew("10.77.1.", "pod:a", "pod", "host-b"))
          .hasMessageContaining("pod:a holds address 10.77.1.2 already");
      assertThat(ipam.leases()).hasSize(1);
    }
  }

  @Test
  void anAddressNeverHasTwoOwnersEvenWhenLeasedConcurrently() throws Exception {
    try (MigrationStore s = new MigrationStore(dir)) {
      Ipam ipam = new Ipam(s);
      List<CompletableFuture<String>> all = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        String owner = "pod:p" + i;
        all.add(CompletableFuture.supplyAsync(() -> ipam.lease("10.77.1.", owner, "pod", "host-a")));
      }
      List<String> ips = all.stream().map(CompletableFuture::join).toList();
      assertThat(ips).doesNotHaveDuplicates().hasSize(40);
      assertThatThrownBy(() -> ipam.leaseExact(ips.get(0), "pod:other", "pod", "host-b"))
          .hasMessageContaining("leased to pod:p");
    }
  }

  @Test
  void theTargetTakesAnAddressOnlyAfterTheSourceLetGo() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Ipam ipam = new Ipam(s);
      String ip = ipam.lease("10.77.1.", "pod:a", "pod", "host-a");
      assertThatThrownBy(() -> ipam.moveTo(ip, "host-b")).hasMessageContaining("still held by host-a");
      ipam.moveTo(ip, null);
      assertThat(ipam.find(ip).host()).isNull();
      ipam.moveTo(ip, "host-b");
      assertThat(ipam.find(ip).host()).isEqualTo("host-b");
      assertThat(ipam.find(ip).owner()).isEqualTo("pod:a");
    }
  }

  @Test
  void aFullRangeSaysSo() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Ipam ipam = new Ipam(s);
      for (int i = 2; i < 255; i++) {
        ipam.leaseExact("10.77.9." + i, "x:" + i, "pod", null);
      }
      assertThatThrownBy(() -> ipam.lease("10.77.9.", "pod:late", "pod", "host-a"))
          .hasMessageContaining("no free address left in 10.77.9.0/24");
    }
  }

  @Test
  void theCommitPointMovesTheLeaseAndTheReservationInOneTransaction() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Ipam ipam = new Ipam(s);
      Capacity cap = new Capacity(s);
      cap.defineHost("host-a", 1024, 4);
      cap.defineHost("host-b", 1024, 4);
      String ip = ipam.lease("10.77.1.", Ipam.podOwner("a"), "pod", "host-a");
      s.insertPod(new PodRecord(new dev.ferry.api.PodSpec(new dev.ferry.api.PodIdentity("u", "a", ip, 16,
          Coordinator.macFor(ip)), List.of(new dev.ferry.api.ContainerSpec("app", List.of("x"), List.of())), 64, 0),
          "host-a", "migrating"));
      cap.reserve("host-a", Capacity.podOwner("a"), "pod", 64);
      cap.reserve("host-b", Capacity.migrationOwner("m1"), "placeholder", 64);
      s.insertMigration(new MigrationRecord("m1", "a", "host-a", "host-b", "cold", dev.ferry.api.MigrationPhase.PENDING,
          false, 1, 1, 1, null, null));
      ipam.moveTo(ip, null);
      ipam.moveTo(ip, "host-b");
      s.commit("m1", "a", "host-b");
      assertThat(ipam.find(ip).host()).isEqualTo("host-b");
      assertThat(cap.usage()).extracting(Capacity.HostUsage::slotsReserved).containsExactly(0, 1);
      assertThat(cap.usage().get(1).reservations()).extracting(Capacity.Reservation::owner).containsExactly("pod:a");
      // the target's copy died before it served anyone: the commit is taken back, all of it
      s.uncommit("m1", "a", "host-a", 64);
      assertThat(s.migration("m1").orElseThrow().committed()).isFalse();
      assertThat(s.pod("a").orElseThrow().host()).isEqualTo("host-a");
      assertThat(ipam.find(ip).host()).isEqualTo("host-a");
      assertThat(cap.usage().get(0).reservations()).extracting(Capacity.Reservation::owner, Capacity.Reservation::kind)
          .containsExactly(org.assertj.core.groups.Tuple.tuple("pod:a", "pod"));
      assertThat(cap.usage().get(1).reservations()).extracting(Capacity.Reservation::owner, Capacity.Reservation::kind)
          .containsExactly(org.assertj.core.groups.Tuple.tuple(Capacity.migrationOwner("m1"), "placeholder"));
    }
  }
}
