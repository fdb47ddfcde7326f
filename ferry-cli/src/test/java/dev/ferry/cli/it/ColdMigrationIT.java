package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.Json;
import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.migration.PodRecord;
import dev.ferry.runtime.Netns;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Cold migration end to end on real runc, CRIU and namespaces. */
class ColdMigrationIT {
  @Test
  void counterPodMovesAndCountsOnWithoutRestartOrGap() throws Exception {
    try (TestLab t = TestLab.up()) {
      PodRecord before = t.runCounter("counter", "host-a");
      long countBefore = t.waitForCount("counter", 20);
      String tmpfsBefore = tmpfsMounts(t.name + "-host-a-counter-app");
      Path report = Files.createTempFile("ferry-report", ".json");
      TestLab.CliResult r = t.cli("migrate", "counter", "--to", "host-b", "--json-report", report.toString());
      assertThat(r.code()).as(r.err()).isZero();
      assertThat(r.out()).contains("Dumping").contains("Transferring").contains("Succeeded");
      MigrationReport rep = Json.readFile(report, MigrationReport.class);
      Files.delete(report);

      long countAfter = t.waitForCount("counter", countBefore + 20); // it counts on, on host-b
      // a file the app keeps rewriting inside its rootfs moved with it (it changed after the
      // pre-copy round, so the frozen round carried it) and is still being written there
      Path counterFile = t.lab.config().host("host-b").stateDir().resolve("pods/counter/bundles/app/rootfs/data/counter");
      assertThat(Long.parseLong(Files.readString(counterFile).strip())).isGreaterThan(countBefore);
      TestLab.assertContiguousFromOne(t.counts("counter"));          // from where it stopped
      assertThat(countAfter).isGreaterThan(countBefore);
      assertThat(rep.outcome).isEqualTo("migrated");
      assertThat(rep.ipAfter).isEqualTo(before.spec().identity().ip()).isEqualTo(rep.ipBefore);
      assertThat(rep.uidAfter).isEqualTo(before.spec().identity().uid());
      assertThat(rep.frozenMs).isPositive();
      assertThat(rep.bytesTransferred).isPositive();
      assertThat(rep.phases).extracting(p -> p.name()).contains("Dumping", "Transferring", "Restoring", "Cutover");

      // exactly one copy: on host-b; nothing of the pod is left on host-a
      assertThat(t.store.pod("counter").orElseThrow().host()).isEqualTo("host-b");
      assertThat(t.containers()).contains(t.name + "-host-b-counter-app", t.name + "-host-b-counter-pause")
          .noneMatch(id -> id.contains("-host-a-"));
      assertThat(Netns.exists(t.name + "-host-a-counter")).isFalse();
      assertThat(t.cli("ps").out()).containsPattern("counter +host-b +" + rep.ipAfter.replace(".", "\\.") + ".*running");

      // and back again: the pod is an ordinary pod of host-b now
      assertThat(t.cli("migrate", "counter", "--to", "host-a").code()).isZero();
      t.waitForCount("counter", countAfter + 20);
      TestLab.assertContiguousFromOne(t.counts("counter"));
      assertThat(t.cli("status").out()).contains("Succeeded");

      // runc's masked directories, bound from the agents' empty read-only tmpfs at each restore
      // instead of archived by CRIU, are still masked after two moves: empty and unwritable
      String app = t.name + "-host-a-counter-app";
      for (String masked : List.of("/proc/acpi", "/sys/firmware")) {
        if (!Files.isDirectory(Path.of(masked))) {
          continue; // not on this host: runc masks nothing there
        }
        dev.ferry.runtime.Exec.Result ls = dev.ferry.runtime.Exec.run("runc", "exec", app, "busybox", "ls", "-A", masked);
        assertThat(ls.ok()).as(ls.stderr()).isTrue();
        assertThat(ls.stdout().strip()).as("%s in the container", masked).isEmpty();
        assertThat(dev.ferry.runtime.Exec.run("runc", "exec", app, "busybox", "touch", masked + "/x").ok())
            .as("%s writable in the container", masked).isFalse();
      }

      // its own tmpfs mounts (/dev, /dev/shm, /sys/fs/cgroup), made again by Ferry at each
      // restore instead of archived by CRIU, hold what they held, with the same options; the
      // devices work and /dev/shm takes files
      assertThat(tmpfsMounts(app)).isEqualTo(tmpfsBefore);
      assertThat(dev.ferry.runtime.Exec.run("runc", "exec", app, "busybox", "sh", "-c",
          "echo x > /dev/null && busybox head -c 4 /dev/zero | busybox wc -c | busybox grep -q 4"
              + " && echo x > /dev/shm/x && busybox rm /dev/shm/x").ok()).isTrue();
      assertThat(t.lab.config().host("host-b").stateDir().resolve("pods/counter")).doesNotExist();
    }
  }

  /**
   * Every entry of the container's /dev and /dev/shm (type, mode, owner, device number, link
   * target), the names in /sys/fs/cgroup, and those mounts' lines of its mount table without
   * their ids.
   */
  private static String tmpfsMounts(String container) {
    dev.ferry.runtime.Exec.Result r = dev.ferry.runtime.Exec.run("runc", "exec", container, "busybox", "sh", "-c",
        "busybox find /dev /dev/shm -xdev -exec busybox stat -c '%n %F %a %u %g %t %T %N' {} \\; | busybox sort;"
            // (what is mounted on each directory of /sys/fs/cgroup shows its own mode: the names)
            + " busybox ls -A /sys/fs/cgroup; busybox grep -E ' /(dev|dev/shm|sys/fs/cgroup) ' /proc/self/mountinfo | busybox cut -d' ' -f4-");
    assertThat(r.ok()).as(r.stderr()).isTrue();
    assertThat(r.stdout()).contains("/dev/null character special file 666 0 0 1 3").contains("/dev/shm directory 1777");
    return r.stdout();
  }

  @Test
  void aPodOfTwoContainersMovesWithBoth() throws Exception {
    try (TestLab t = TestLab.up()) {
      // each container restores lazily from the target's own images, with a page-client daemon of its own
      t.coordinator.runPod("host-a", "duo", List.of(new dev.ferry.api.ContainerSpec("app", TestLab.COUNTER, List.of()),
          new dev.ferry.api.ContainerSpec("side", TestLab.COUNTER, List.of())), 64);
      long before = t.waitForCount("duo", 20);
      TestLab.CliResult r = t.cli("migrate", "duo", "--to", "host-b", "--strategy", "cold");
      assertThat(r.code()).as(r.err()).isZero();
      t.waitForCount("duo", before + 20);
      TestLab.assertContiguousFromOne(t.counts("duo"));
      List<Long> side = t.coordinator.logs("duo", "side").lines().filter(l -> !l.isBlank()).map(l -> Long.parseLong(l.strip()))
          .toList();
      TestLab.assertContiguousFromOne(side);
      assertThat(t.containers()).contains(t.name + "-host-b-duo-app", t.name + "-host-b-duo-side")
          .noneMatch(id -> id.contains("-host-a-duo"));
    }
  }

  @Test
  void redisKeepsEveryAcknowledgedWriteItsIpUidAndTcpConnection() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of())
        .afterMigration((l, c, rep) -> {
          assertThat(c.store().pod("redis").orElseThrow().host()).isEqualTo("host-b");
          assertThat(Netns.exists(lab + "-host-a-redis")).as("source sandbox removed").isFalse();
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    TestLab.assertInvariants(r);
    assertThat(r.downtimeMs).isPositive();
    assertThat(DemoRunner.success(r)).isTrue();
    TestLab.assertNothingLeft(lab);
  }
}
