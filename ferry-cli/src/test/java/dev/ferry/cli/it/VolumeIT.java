package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.MigrationReport;
import dev.ferry.api.VolumeSpec;
import dev.ferry.cli.LabDisks;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.runtime.Files2;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Host volumes move with the pod; a network disk follows it and is never attached to two hosts. */
class VolumeIT {
  /** Appends 1, 2, 3, ... to a file on the host volume and one on the disk, 20 times a second. */
  private static final List<String> WRITER = List.of("busybox", "sh", "-c",
      "i=0; while true; do i=$((i+1)); echo $i >> /vol/log; echo $i >> /disk/log; sleep 0.05; done");

  @Test
  void volumeDataSurvivesMigrationsAndTheDiskIsNeverOnTwoHosts() throws Exception {
    try (TestLab t = TestLab.up()) {
      LabDisks disks = new LabDisks(t.lab.config());
      t.coordinator.disks().create("d1");
      t.coordinator.runPod("host-a", "w", List.of(new ContainerSpec("app", WRITER, List.of())), 64, 0,
          List.of(new VolumeSpec("v1", "host", "/vol"), new VolumeSpec("d1", "disk", "/disk")));
      Path diskLog = disks.store("d1").resolve("log");
      waitForLines(diskLog, 20);
      assertThat(disks.attachedTo("d1")).containsExactly("host-a");

      // watch the mounts (what the hosts see, not what the record says) while the pod moves back and forth
      AtomicInteger samples = new AtomicInteger();
      List<List<String>> seen = new ArrayList<>();
      CompletableFuture<Void> watch = new CompletableFuture<>();
      Thread watcher = new Thread(() -> {
        while (!watch.isDone()) {
          List<String> on = disks.attachedTo("d1");
          samples.incrementAndGet();
          if (seen.isEmpty() || !seen.get(seen.size() - 1).equals(on)) {
            seen.add(on);
          }
        }
      });
      watcher.start();
      try {
        MigrationReport there = t.coordinator.migrate(new MigrationOptions("w", "host-b", "cold", List.of()),
            dev.ferry.migration.ProgressListener.NONE);
        assertThat(there.outcome).isEqualTo("migrated");
        // a failed migration back: the disk returns to host-b with the pod
        MigrationReport failed = t.migrateInBackground(new MigrationOptions("w", "host-a", "cold",
            List.of("corrupt-image-in-transit"))).get(120, TimeUnit.SECONDS);
        assertThat(failed.outcome).isEqualTo("rolled-back");
        assertThat(t.store.steps(failed.migrationId)).containsEntry("detach-disks", "undone");
        // and back with a live strategy (its dump leaves the source tree frozen while the disk moves)
        MigrationReport back = t.coordinator.migrate(new MigrationOptions("w", "host-a", "precopy", List.of()),
            dev.ferry.migration.ProgressListener.NONE);
        assertThat(back.outcome).isEqualTo("migrated");
      } finally {
        watch.complete(null);
        watcher.join();
      }
      assertThat(samples.get()).isGreaterThan(50);
      assertThat(seen).as("hosts the disk was mounted on, in order").allSatisfy(on -> assertThat(on).hasSizeLessThan(2))
          .containsSubsequence(List.of("host-a"), List.of("host-b"), List.of("host-a")).last().isEqualTo(List.of("host-a"));
      assertThat(t.coordinator.disks().find("d1").host()).isEqualTo("host-a");

      // the pod wrote on, back on host-a, into both: every line from 1, no gap, no restart
      long before = Files.readAllLines(diskLog).size();
      waitForLines(diskLog, before + 20);
      Path volLog = t.lab.config().host("host-a").stateDir().resolve("pods/w/bundles/app/volumes/v1/log");
      assertContiguous(Files.readAllLines(volLog));
      assertContiguous(Files.readAllLines(diskLog));
      assertThat(Files.exists(t.lab.config().host("host-b").stateDir().resolve("pods/w"))).isFalse();

      // removing the pod detaches the disk; its data stays until the disk is removed
      t.coordinator.deletePod("w");
      assertThat(disks.attachedTo("d1")).isEmpty();
      assertThat(t.coordinator.disks().find("d1").host()).isNull();
      t.coordinator.disks().remove("d1");
      assertThat(Files.exists(disks.store("d1"))).isFalse();
      assertThat(Files2.mountsUnder(t.lab.config().runDir()).stream().filter(m -> m.contains("/disks/"))).isEmpty();
    }
  }

  private static void waitForLines(Path f, long n) throws InterruptedException, java.io.IOException {
    long deadline = System.currentTimeMillis() + 20_000;
    while (System.currentTimeMillis() < deadline) {
      if (Files.exists(f) && Files.readAllLines(f).size() >= n) {
        return;
      }
      Thread.sleep(50);
    }
    throw new AssertionError(f + " did not reach " + n + " lines");
  }

  private static void assertContiguous(List<String> lines) {
    assertThat(lines).isNotEmpty();
    for (int i = 0; i < lines.size(); i++) {
      assertThat(lines.get(i).strip()).as("line %d (a lost write or a restart shows here)", i + 1).isEqualTo(String.valueOf(i + 1));
    }
  }
}
