package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationReport;
import dev.ferry.migration.Capacity;
import dev.ferry.migration.MigrationOptions;
import java.util.ArrayList;
import java.util.List;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.ProgressListener;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Hosts' capacity: concurrent migrations cannot overbook a target, and a refusal says why. */
class CapacityIT {
  @Test
  void threeConcurrentMigrationsToAHostWithRoomForTwoMoveTwoAndRefuseOne() throws Exception {
    try (TestLab t = TestLab.up(3)) {
      for (String p : List.of("c1", "c2", "c3")) {
        t.runCounter(p, "host-a");
      }
      t.runCounter("blocker", "host-b"); // host-b: 3 slots, 1 taken, room for two
      assertThat(t.cli("lab", "show").out()).contains("4096 MiB, 3 pods");

      // three threads of their own (the common pool may have one thread on a small machine), started together
      ExecutorService pool = Executors.newFixedThreadPool(3);
      CountDownLatch go = new CountDownLatch(1);
      List<CompletableFuture<MigrationReport>> all = new ArrayList<>();
      for (String p : List.of("c1", "c2", "c3")) {
        all.add(CompletableFuture.supplyAsync(() -> {
          try {
            go.await();
            return t.coordinator.migrate(new MigrationOptions(p, "host-b", "cold", List.of()), ProgressListener.NONE);
          } catch (MigrationFailedException e) {
            return e.report();
          } catch (InterruptedException e) {
            throw new IllegalStateException(e);
          }
        }, pool));
      }
      go.countDown();
      pool.shutdown();
      List<MigrationReport> reports = new ArrayList<>();
      for (CompletableFuture<MigrationReport> f : all) {
        reports.add(f.get(180, TimeUnit.SECONDS));
      }
      assertThat(reports).extracting(r -> r.outcome).containsExactlyInAnyOrder("migrated", "migrated", "rolled-back");
      MigrationReport refused = reports.stream().filter(r -> !r.outcome.equals("migrated")).findFirst().orElseThrow();
      assertThat(refused.error).contains("step reserve-target").contains("host host-b is full: all 3 pod slots are reserved");
      // refused while the other two were in flight: their placeholders held the slots
      assertThat(refused.error.split("migration:m-", -1)).as("placeholders named in: " + refused.error).hasSize(3);
      assertThat(refused.freezeStartEpochMs).as("the refused pod was never frozen").isNull();
      assertThat(t.store.steps(refused.migrationId).keySet()).containsExactly("pre-hook", "reserve-target");

      // nothing overbooked: host-b holds exactly its 3 pods, in the record and on the host itself
      Capacity.HostUsage b = t.coordinator.capacity().usage().stream().filter(h -> h.host().equals("host-b")).findFirst()
          .orElseThrow();
      assertThat(b.slotsReserved()).isEqualTo(3).isLessThanOrEqualTo(b.podSlots());
      assertThat(b.reservations()).allMatch(r -> r.kind().equals("pod"));
      try (var agent = t.lab.client("host-b")) {
        assertThat(agent.pods()).hasSize(3);
      }
      assertThat(t.store.pod(refused.pod).orElseThrow().host()).isEqualTo("host-a");
      TestLab.assertContiguousFromOne(t.counts(refused.pod));
      for (MigrationReport r : reports) {
        if (r.outcome.equals("migrated")) {
          t.waitForCount(r.pod, t.counts(r.pod).size() + 10L);
          TestLab.assertContiguousFromOne(t.counts(r.pod));
        }
      }

      // the CLI says why too, and shows the capacity
      TestLab.CliResult again = t.cli("migrate", refused.pod, "--to", "host-b");
      assertThat(again.code()).isNotZero();
      assertThat(again.err()).contains("host host-b is full");
      assertThat(t.cli("hosts").out()).containsPattern("host-b +\\d+ / 4096 +3 / 3");
    }
  }
}
