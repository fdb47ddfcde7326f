package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.runtime.Netns;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@code ferry migrate cancel}: before the commit point the source keeps running as before. */
class CancelIT {
  @Test
  void cancelDuringATransferRollsBackAndTheSourceCountsOn() throws Exception {
    try (TestLab t = TestLab.up()) {
      t.runCounter("counter", "host-a");
      // capped at 1 MB/s, the pre-copy of the pod's files (a few MB) takes seconds: time to cancel
      CompletableFuture<MigrationReport> migration =
          t.migrateInBackground(new MigrationOptions("counter", "host-b", "cold", List.of(), 1));
      MigrationRecord m = t.waitForPhase(MigrationPhase.PRECOPY, 30);
      long before = t.counts("counter").size();
      TestLab.CliResult r = t.cli("migrate", "cancel", m.id());
      assertThat(r.code()).as(r.err()).isZero();
      assertThat(r.out()).contains("RolledBack");
      MigrationReport report = migration.get(60, TimeUnit.SECONDS);
      assertThat(report.outcome).isEqualTo("rolled-back");
      assertThat(report.error).contains("cancelled by the user");
      assertThat(t.store.pod("counter").orElseThrow().host()).isEqualTo("host-a");
      t.waitForCount("counter", before + 10);
      TestLab.assertContiguousFromOne(t.counts("counter"));
      assertThat(Netns.exists(t.name + "-host-b-counter")).isFalse();
      assertThat(t.containers()).noneMatch(c -> c.contains("-host-b-"));
      // a finished migration cannot be cancelled, and says so
      TestLab.CliResult again = t.cli("migrate", "cancel", m.id());
      assertThat(again.code()).isNotZero();
      assertThat(again.err()).contains("has ended already");
    }
  }
}
