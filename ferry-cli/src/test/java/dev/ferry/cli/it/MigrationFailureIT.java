package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.lab.Lab;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Migrations that fail on the target leave the source running with its IP, its data and even
 * its client's TCP connection.
 */
class MigrationFailureIT {
  @Test
  void targetAgentKilledDuringTransferLeavesSourceRunning() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of("target-agent-crash-in-transfer"))
        .afterMigration((l, c, rep) -> {
          var host = l.config().host("host-b");
          assertThat(l.agentAlive(host)).as("target agent died mid-transfer").isFalse();
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
          assertThat(c.migrations()).singleElement().satisfies(m -> assertThat(m.phase()).isEqualTo(MigrationPhase.ROLLED_BACK));
          try (var a = l.client("host-a")) {
            assertThat(a.pod("redis").running()).isTrue();
          }
          // the target's agent, restarted, removes the placeholder the crash left behind
          Lab.up(lab, List.of("host-a", "host-b"), 8192);
          assertThat(Netns.exists(lab + "-host-b-redis")).isFalse();
          assertThat(Exec.run("runc", "list", "-q").stdout()).doesNotContain(lab + "-host-b-");
          try (var b = l.client("host-b")) {
            assertThat(b.pods()).isEmpty();
          }
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("rolled-back");
    assertThat(r.error).contains("Transferring"); // the frozen round, not the pre-copy
    assertThat(r.writesAcked).isGreaterThan(100);
    assertThat(r.writesLost).isZero();
    assertThat(r.tcpConnectionPreserved).as("the client's connection survives the rollback").isTrue();
    assertThat(r.ipAfter).isEqualTo(r.ipBefore);
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void corruptedImageIsRefusedBeforeRestoreAndSourceKeepsRunning() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of("corrupt-image-in-transit"))
        .afterMigration((l, c, rep) -> {
          String targetLog = Files.readString(l.config().host("host-b").logFile());
          assertThat(targetLog).contains("checksum mismatch in").contains("at offset");
          assertThat(targetLog).doesNotContain("restored pod");
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
          assertThat(Netns.exists(lab + "-host-b-redis")).as("target placeholder removed").isFalse();
          try (var a = l.client("host-a")) {
            assertThat(a.pod("redis").running()).isTrue();
          }
        })
        .run();
    assertThat(r.outcome).isEqualTo("rolled-back");
    assertThat(r.error).contains("checksum mismatch");
    assertThat(r.writesLost).isZero();
    assertThat(r.tcpConnectionPreserved).isTrue();
    TestLab.assertNothingLeft(lab);
  }

  /**
   * The target starts its restore ahead (runc and CRIU up to CRIU's configuration) while the
   * identity is handed over; a hand-over that fails then must end that restore without letting
   * CRIU run, and leave nothing of it: no container, process, cgroup or FIFO.
   */
  @Test
  void aRestoreStartedAheadIsAbandonedWhenTheHandOverFailsAndTheSourceRunsOn() throws Exception {
    TestLab.assumeUserfaultfd("hybrid is");
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of("refuse-identity")).strategy("hybrid")
        .afterMigration((l, c, rep) -> {
          String targetLog = Files.readString(l.config().host("host-b").logFile());
          assertThat(targetLog).as("the restore was started ahead").containsPattern("restore of pod redis made ready: .*restoreAhead");
          assertThat(targetLog).contains("abandoned before CRIU ran").doesNotContain("restored pod");
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
          try (var a = l.client("host-a")) {
            assertThat(a.pod("redis").running()).isTrue();
          }
          assertThat(Exec.run("runc", "list", "-q").stdout()).doesNotContain(lab + "-host-b-");
          assertThat(Exec.run("pgrep", "-af", "criu").stdout()).doesNotContain("/" + lab + "/hosts/host-b/");
          for (String hierarchy : List.of("freezer", "memory", "pids", "")) { // cgroup v1, and v2's one tree
            assertThat(java.nio.file.Path.of("/sys/fs/cgroup", hierarchy, "ferry", lab + "-host-b", "redis-redis"))
                .as("the restore's cgroup in /sys/fs/cgroup/" + hierarchy).doesNotExist();
          }
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("rolled-back");
    assertThat(r.error).contains("refuses to take the identity");
    TestLab.assertInvariants(r);
    TestLab.assertNothingLeft(lab);
  }
}
