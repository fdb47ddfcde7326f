package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.runtime.Netns;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A coordinator that died mid-migration: the next ferry command finds the migration in the
 * durable record and rolls it back (before the commit point) or finishes it (after).
 */
class RecoveryIT {
  /** A pid that surely belongs to no live process: the coordinator that "crashed". */
  private static long deadPid() throws Exception {
    Process p = new ProcessBuilder("true").start();
    p.waitFor();
    return p.pid();
  }

  private static void record(TestLab t, String id, long pid) {
    long now = System.currentTimeMillis();
    t.store.insertMigration(new MigrationRecord(id, "counter", "host-a", "host-b", "cold", MigrationPhase.PENDING, false, pid,
        now, now, null, null));
    t.store.setPodState("counter", "migrating");
  }

  private static void step(TestLab t, String id, String step, String host, String role, String call, Map<String, Object> body) {
    t.store.stepStatus(id, step, "started");
    try (var a = t.lab.client(host)) {
      a.step(id, role, call, body);
    }
    t.store.stepStatus(id, step, "done");
  }

  @Test
  void interruptedBeforeCommitIsRolledBackAndTheSourceCountsOn() throws Exception {
    try (TestLab t = TestLab.up()) {
      var pod = t.runCounter("counter", "host-a");
      String id = "m-crashed-1";
      record(t, id, deadPid());
      step(t, id, "prepare-target", "host-b", "target", "prepare", Map.of("spec", pod.spec()));
      step(t, id, "checkpoint", "host-a", "source", "checkpoint", Map.of("pod", "counter"));
      long frozenAt = t.counts("counter").size();
      // ... and here the coordinator died. Any ferry command recovers:
      TestLab.CliResult r = t.cli("ps");
      assertThat(r.err()).contains("recovered migration " + id).contains("rolled back");
      assertThat(t.store.migration(id).orElseThrow().phase()).isEqualTo(MigrationPhase.ROLLED_BACK);
      assertThat(t.store.pod("counter").orElseThrow().state()).isEqualTo("running");
      t.waitForCount("counter", frozenAt + 10);
      TestLab.assertContiguousFromOne(t.counts("counter"));
      assertThat(Netns.exists(t.name + "-host-b-counter")).isFalse();
      assertThat(t.containers()).noneMatch(c -> c.contains("-host-b-"));
    }
  }

  @Test
  void interruptedAfterCommitIsFinished() throws Exception {
    try (TestLab t = TestLab.up()) {
      var pod = t.runCounter("counter", "host-a");
      String id = "m-crashed-2";
      record(t, id, deadPid());
      String data;
      try (var b = t.lab.client("host-b")) {
        data = b.info().address();
      }
      step(t, id, "prepare-target", "host-b", "target", "prepare", Map.of("spec", pod.spec()));
      step(t, id, "checkpoint", "host-a", "source", "checkpoint", Map.of("pod", "counter"));
      step(t, id, "transfer", "host-a", "source", "send", Map.of("pod", "counter", "target", data, "faults", List.of()));
      step(t, id, "release-identity", "host-a", "source", "release", Map.of("pod", "counter"));
      step(t, id, "take-identity", "host-b", "target", "identity", Map.of("pod", "counter"));
      step(t, id, "restore", "host-b", "target", "restore", Map.of("pod", "counter"));
      step(t, id, "commit", "host-b", "target", "commit", Map.of("pod", "counter"));
      t.store.commit(id, "counter", "host-b");
      // died before removing the source copy
      assertThat(Netns.exists(t.name + "-host-a-counter")).isTrue();
      TestLab.CliResult r = t.cli("status");
      assertThat(r.err()).contains("recovered migration " + id).contains("finished");
      assertThat(t.store.migration(id).orElseThrow().phase()).isEqualTo(MigrationPhase.SUCCEEDED);
      assertThat(Netns.exists(t.name + "-host-a-counter")).isFalse();
      assertThat(t.containers()).noneMatch(c -> c.contains("-host-a-"));
      long n = t.counts("counter").size();
      t.waitForCount("counter", n + 10);
      TestLab.assertContiguousFromOne(t.counts("counter"));
    }
  }
}
