package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.migration.Capacity;
import dev.ferry.migration.HookSpec;
import dev.ferry.migration.Ipam;
import dev.ferry.migration.MigrationRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.assertj.core.groups.Tuple;
import org.junit.jupiter.api.Test;

/**
 * A coordinator that died in the middle of the hand-over: the next command's recovery gives
 * back what the migration held (the placeholder's address and reservation), returns the pod's
 * address to the source in the IPAM, and tells the admitting pre-hook it was rolled back.
 */
class HandoverRecoveryIT {
  @Test
  void recoveryGivesBackLeasesAndReservationsAndTellsThePreHook() throws Exception {
    Path calls = Files.createTempFile("ferry-hook-calls", ".txt");
    Path hook = Files.createTempFile("ferry-pre-hook", ".sh");
    Files.writeString(hook, "#!/bin/sh\ncat > /dev/null\necho \"$FERRY_HOOK_PHASE $FERRY_MIGRATION\" >> " + calls + "\n");
    Files.setPosixFilePermissions(hook, PosixFilePermissions.fromString("rwx------"));
    try (TestLab t = TestLab.up()) {
      var pod = t.runCounter("counter", "host-a");
      String ip = pod.spec().identity().ip();
      String id = "m-crashed-h";
      Process dead = new ProcessBuilder("true").start();
      dead.waitFor();
      long now = System.currentTimeMillis();
      t.store.insertMigration(new MigrationRecord(id, "counter", "host-a", "host-b", "cold", MigrationPhase.PENDING, false,
          dead.pid(), now, now, null, null));
      t.store.setHooks(id, new HookSpec.Hooks(new HookSpec(hook.toString(), Duration.ofSeconds(5), "abort"), null).toJson());
      t.store.setPodState("counter", "migrating");
      // what the dead coordinator had done: the hook admitted, the target reserved, the
      // placeholder made with its temporary address, the pod frozen and its IP let go
      t.store.stepStatus(id, "pre-hook", "done");
      t.store.stepStatus(id, "reserve-target", "started");
      t.coordinator.capacity().reserve("host-b", Capacity.migrationOwner(id), "placeholder", 64);
      String temp = t.coordinator.ipam().lease(t.lab.config().podRange(), Ipam.placeholderOwner(id), "placeholder", "host-b");
      t.store.stepStatus(id, "reserve-target", "done");
      Map<String, Object> prepare = new HashMap<>(Map.of("spec", pod.spec(), "tempIp", temp, "tempMac",
          "02:fe:0a:4d:01:" + String.format("%02x", Integer.parseInt(temp.substring(temp.lastIndexOf('.') + 1)))));
      step(t, id, "prepare-target", "host-b", "target", "prepare", prepare);
      step(t, id, "checkpoint", "host-a", "source", "checkpoint", Map.of("pod", "counter"));
      long frozenAt = t.counts("counter").size();
      step(t, id, "release-identity", "host-a", "source", "release", Map.of("pod", "counter"));
      t.coordinator.ipam().moveTo(ip, null);
      assertThat(t.coordinator.ipam().find(ip).host()).isNull();

      TestLab.CliResult r = t.cli("ps"); // ... and here it died; any command recovers
      assertThat(r.err()).contains("recovered migration " + id).contains("rolled back");
      assertThat(t.store.migration(id).orElseThrow().phase()).isEqualTo(MigrationPhase.ROLLED_BACK);
      assertThat(t.coordinator.ipam().leases()).extracting(Ipam.Lease::owner, Ipam.Lease::host)
          .containsExactly(Tuple.tuple("pod:counter", "host-a"));
      assertThat(t.coordinator.capacity().usage()).filteredOn(h -> h.host().equals("host-b")).singleElement()
          .satisfies(h -> assertThat(h.reservations()).isEmpty());
      assertThat(Files.readString(calls).strip()).isEqualTo("rolled-back " + id);
      t.waitForCount("counter", frozenAt + 10);
      TestLab.assertContiguousFromOne(t.counts("counter"));
      assertThat(t.containers()).noneMatch(c -> c.contains("-host-b-"));
    } finally {
      Files.deleteIfExists(hook);
      Files.deleteIfExists(calls);
    }
  }

  private static void step(TestLab t, String id, String step, String host, String role, String call,
      Map<String, Object> body) {
    t.store.stepStatus(id, step, "started");
    try (var a = t.lab.client(host)) {
      a.step(id, role, call, body);
    }
    t.store.stepStatus(id, step, "done");
  }
}
