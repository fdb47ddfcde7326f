package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.runtime.Netns;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Post-copy (CRIU lazy pages over userfaultfd) with Redis under a steady write load. */
class PostCopyIT {
  private static void assumePostCopy() {
    TestLab.assumeUserfaultfd("post-copy is");
  }

  @Test
  void redisMovesWithItsMemoryFollowingAfterTheRestore() throws Exception {
    assumePostCopy();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("postcopy").dataMiB(64)
        .afterMigration((l, c, rep) -> {
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-b");
          assertThat(Netns.exists(lab + "-host-a-redis")).as("source sandbox removed").isFalse();
          // the lazy dump is CRIU's own (not runc's checkpoint): the agent removes the container
          // runc still knew, and the dump ended once its pages were served
          assertThat(dev.ferry.runtime.Exec.run("runc", "list", "-q").stdout().lines()
              .filter(id -> id.startsWith(lab + "-host-a-"))).as("the source's containers removed").isEmpty();
          assertThat(dev.ferry.runtime.Procs.withCommandLineContaining("--lazy-pages", "/run/ferry/" + lab + "/hosts/host-a/"))
              .as("the source's lazy dump ended").isEmpty();
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    assertThat(r.strategy).isEqualTo("postcopy");
    TestLab.assertInvariants(r);
    // 64 MiB of data came after the restore, as pages, not in the frozen transfer
    assertThat(r.postcopyPages).isGreaterThan(64L * 256);
    assertThat(r.frozenBytesTransferred).isLessThan(16L << 20);
    assertThat(r.atRiskMs).isPositive();
    assertThat(r.phases).extracting(p -> p.name()).contains("Postcopy");
    TestLab.assertNothingLeft(lab);
  }

  /**
   * Post-copy's pages come from CRIU's page server, which Ferry does not speak: under --bandwidth
   * the source reaches it through its page daemon's relay, which holds them to the cap (in
   * clear here; over TLS the same relay carries them anyway).
   */
  @Test
  void theMigrationsBandwidthCapHoldsThePagesThatFollowTheRestore() throws Exception {
    assumePostCopy();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("postcopy").dataMiB(64).bandwidth(40)
        .tls(false).run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    TestLab.assertInvariants(r);
    assertThat(r.postcopyPages).isGreaterThan(64L * 256);
    // from the restore's start to the last page: a little longer than the pages took
    double mbps = r.postcopyPages * 4096.0 / r.atRiskMs / 1000;
    assertThat(mbps).as("post-copy's MB/s under a 40 MB/s cap (%d pages in %d ms)", r.postcopyPages, r.atRiskMs)
        .isBetween(20.0, 44.0);
    TestLab.assertNothingLeft(lab);
  }

  @Test
  void targetKilledBeforeTheRestoreThawsTheFrozenSourceWithItsData() throws Exception {
    assumePostCopy();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of("target-agent-crash-in-transfer")).strategy("postcopy")
        .afterMigration((l, c, rep) -> {
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-a");
          assertThat(c.migrations()).singleElement().satisfies(m -> assertThat(m.phase()).isEqualTo(MigrationPhase.ROLLED_BACK));
          try (var a = l.client("host-a")) {
            assertThat(a.pod("redis").running()).isTrue();
          }
        })
        .run();
    assertThat(r.outcome).isEqualTo("rolled-back");
    assertThat(r.ipAfter).isEqualTo(r.ipBefore);
    assertThat(r.writesAcked).isGreaterThan(100);
    assertThat(r.writesLost).isZero();
    // CRIU thaws a tree whose lazy dump failed with its TCP sockets still in repair mode;
    // Ferry takes them out of it, and the client's connection carries on
    assertThat(r.tcpConnectionPreserved).isTrue();
    TestLab.assertNothingLeft(lab);
  }
}
