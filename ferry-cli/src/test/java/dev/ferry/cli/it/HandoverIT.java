package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.cli.demo.IpOwnerProber;
import dev.ferry.cli.demo.IpOwnerSamples;
import dev.ferry.migration.Capacity;
import dev.ferry.migration.HookSpec;
import dev.ferry.migration.Ipam;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The management plane of a migration: the placeholder (blank birth), the identity reclaimed
 * with one owner at every instant, the service VIP, and the way back.
 */
class HandoverIT {
  @Test
  void thePlaceholderHoldsThePodsLimitsAndATemporaryAddressUntilCancelled() throws Exception {
    try (TestLab t = TestLab.up()) {
      t.coordinator.runPod("host-a", "counter", List.of(new ContainerSpec("app", TestLab.COUNTER, List.of())), 64, 256);
      t.waitForCount("counter", 5);
      String podIp = t.store.pod("counter").orElseThrow().spec().identity().ip();
      // capped at 1 MB/s, the pre-copy of the pod's files takes seconds: the placeholder waits meanwhile
      CompletableFuture<MigrationReport> migration =
          t.migrateInBackground(new MigrationOptions("counter", "host-b", "cold", List.of(), 1));
      MigrationRecord m = t.waitForPhase(MigrationPhase.PRECOPY, 30);

      String slot = t.name + "-host-b-counter-app.slot";
      assertThat(t.containers()).contains(slot, t.name + "-host-b-counter-pause");
      long pid = Json.MAPPER.readTree(Exec.checked("runc", "state", slot).stdout()).path("pid").asLong();
      assertThat(cgroupValue(pid, "memory", "memory.limit_in_bytes")).isEqualTo(64L * 1024 * 1024);
      assertThat(cgroupValue(pid, "cpu", "cpu.shares")).isEqualTo(256L);

      Ipam.Lease temp = t.coordinator.ipam().leases().stream().filter(l -> l.kind().equals("placeholder")).findFirst()
          .orElseThrow();
      assertThat(temp.owner()).isEqualTo(Ipam.placeholderOwner(m.id()));
      assertThat(temp.host()).isEqualTo("host-b");
      assertThat(temp.ip()).isNotEqualTo(podIp);
      assertThat(Exec.run(Netns.in(t.name + "-host-b-counter", "ip", "-4", "-o", "addr", "show", "dev", "eth0")).stdout())
          .contains(temp.ip() + "/").doesNotContain(podIp + "/");
      assertThat(t.coordinator.capacity().usage()).filteredOn(h -> h.host().equals("host-b")).singleElement()
          .satisfies(h -> assertThat(h.reservations()).containsExactly(
              new Capacity.Reservation(Capacity.migrationOwner(m.id()), "host-b", "placeholder", 64)));
      assertThat(t.cli("hosts", "--leases").out()).contains(temp.ip()).contains("placeholder:" + m.id())
          .contains(podIp);

      assertThat(t.cli("migrate", "cancel", m.id()).code()).isZero();
      assertThat(migration.get(60, TimeUnit.SECONDS).outcome).isEqualTo("rolled-back");
      // the temporary address and the reservation went with the placeholder; the pod's own stayed
      assertThat(t.coordinator.ipam().leases()).extracting(Ipam.Lease::owner, Ipam.Lease::host)
          .containsExactly(org.assertj.core.groups.Tuple.tuple("pod:counter", "host-a"));
      assertThat(t.coordinator.capacity().usage()).filteredOn(h -> h.host().equals("host-b")).singleElement()
          .satisfies(h -> assertThat(h.reservations()).isEmpty());
      assertThat(t.containers()).noneMatch(c -> c.contains("-host-b-"));

      // a pod removed gives back its address and its reservation
      t.coordinator.deletePod("counter");
      assertThat(t.coordinator.ipam().leases()).isEmpty();
      assertThat(t.coordinator.capacity().usage()).allSatisfy(h -> assertThat(h.reservations()).isEmpty());
    }
  }

  @Test
  void theIpAnswersFromOneHostAtEverySampleAndAVipClientLosesNothing() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("cold").vip(true).probeIpOwners(100)
        .afterMigration((l, c, rep) -> {
          // after it: the target only, and the VIP's backend is the pod on the target
          try (IpOwnerProber after = IpOwnerProber.start(l, rep.ipBefore, 200)) {
            Thread.sleep(1000);
            IpOwnerSamples.Summary s = after.stop();
            assertThat(s.samples()).isGreaterThan(100);
            assertThat(s.ownersMax()).isEqualTo(1);
            assertThat(s.sequence()).containsExactly("host-b");
          }
          assertThat(c.services().find("redis").backendHost()).isEqualTo("host-b");
          assertThat(Exec.run(Netns.in(l.config().clientNs(), "nft", "list", "chain", "ip", "ferry", "svc-redis")).stdout())
              .contains("dnat to " + rep.ipBefore + ":6379").contains("pod on host-b");
          assertThat(c.ipam().find(rep.ipBefore).host()).isEqualTo("host-b");
          assertThat(c.ipam().leases()).noneMatch(x -> x.kind().equals("placeholder"));
          // a removed service leaves no rule and frees its VIP
          String vip = c.services().find("redis").vip();
          c.services().remove("redis");
          String rules = Exec.run(Netns.in(l.config().clientNs(), "nft", "list", "table", "ip", "ferry")).stdout();
          assertThat(rules).doesNotContain("svc-redis").doesNotContain(vip);
          assertThat(c.ipam().find(vip)).isNull();
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    TestLab.assertInvariants(r);
    assertThat(r.vip).startsWith("10.77.2.");
    assertThat(r.vipGapMs).isPositive().isEqualTo(r.downtimeMs);
    assertThat(r.ipOwnerHz).isGreaterThanOrEqualTo(100.0);
    assertThat(r.ipOwnerSamples).isGreaterThan(200);
    assertThat(r.ipOwnersMax).as("most hosts answering for the pod's IP at one sample").isEqualTo(1);
    assertThat(r.ipOwnersMin).as("fewest hosts answering for the pod's IP at one sample").isEqualTo(1);
    assertThat(r.ipOwnerSequence).containsExactly("host-a", "host-b");
    assertThat(r.ipUnownedMaxMs).isLessThan(r.frozenMs);
    // the source went silent before the target answered, and not for long
    assertThat(r.identityUnansweredMicros).isPositive().isLessThan(r.frozenMs * 1000);
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void aFailingPostHookMovesThePodBackAndTheIpAnswersFromTheSourceOnly() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    Path hook = Files.createTempFile("ferry-post-hook", ".sh");
    Files.writeString(hook, "#!/bin/sh\ncat > /dev/null\necho registry refused; exit 1\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    try {
      MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("cold").vip(true).probeIpOwners(100)
          .hooks(new HookSpec.Hooks(null, new HookSpec(hook.toString(), Duration.ofSeconds(5), "abort")))
          .afterMigration((l, c, rep) -> {
            try (IpOwnerProber after = IpOwnerProber.start(l, rep.ipBefore, 200)) {
              Thread.sleep(1000);
              IpOwnerSamples.Summary s = after.stop();
              assertThat(s.ownersMax()).isEqualTo(1);
              assertThat(s.sequence()).containsExactly("host-a");
            }
            assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
            assertThat(c.services().find("redis").backendHost()).isEqualTo("host-a");
            assertThat(c.ipam().find(rep.ipBefore).host()).isEqualTo("host-a");
          })
          .run();
      DemoRunner.printSummary(r, System.out);
      assertThat(r.outcome).isEqualTo("rolled-back");
      assertThat(r.error).contains("post-migration hook").contains("moved back to host-a");
      assertThat(r.hooks).singleElement().satisfies(h -> {
        assertThat(h.result()).isEqualTo("failed");
        assertThat(h.answer()).contains("registry refused");
      });
      TestLab.assertInvariants(r);
      assertThat(r.ipOwnersMax).isEqualTo(1);
      assertThat(r.ipOwnersMin).as("both hand-overs, there and back, leave no sample unanswered").isEqualTo(1);
      assertThat(r.ipOwnerSequence).containsExactly("host-a", "host-b", "host-a");
      TestLab.assertNothingLeft(lab);
    } finally {
      Files.deleteIfExists(hook);
    }
  }

  /** A cgroup v1 value of a process: {@code file} in its {@code controller} hierarchy. */
  private static long cgroupValue(long pid, String controller, String file) throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "cgroup"))) {
      String[] f = line.split(":", 3);
      if (List.of(f[1].split(",")).contains(controller)) {
        Path dir = Path.of("/sys/fs/cgroup", f[1], f[2]);
        return Long.parseLong(Files.readString(dir.resolve(file)).strip());
      }
    }
    throw new AssertionError("no " + controller + " cgroup for pid " + pid);
  }
}
