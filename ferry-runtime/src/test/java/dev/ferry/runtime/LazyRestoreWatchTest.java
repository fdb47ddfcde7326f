package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Against a stand-in for runc restore: a shell with runc's arguments, and a child under it. */
class LazyRestoreWatchTest {
  @TempDir
  Path work;

  private Process fakeRestore(Path workDir) throws Exception {
    Files.createDirectories(workDir);
    return new ProcessBuilder("sh", "-c", "sleep 60 & wait", "runc", "restore", "-d", "--lazy-pages", "--work-path",
        workDir.toString(), "--bundle", "b", "id").start();
  }

  @Test
  void aRestoreThatOutlivesItsPageClientIsKilledWithWhatRunsUnderIt() throws Exception {
    Path dir = work.resolve("work-restore/redis");
    Process restore = fakeRestore(dir);
    Process other = fakeRestore(work.resolve("work-restore/redis2")); // another migration's: left alone
    Thread.sleep(200);
    ProcessHandle child = restore.toHandle().children().findFirst().orElseThrow();
    AtomicBoolean clientAlive = new AtomicBoolean(true);
    try (LazyRestoreWatch w = LazyRestoreWatch.start(clientAlive::get, dir, Duration.ofMillis(300))) {
      Thread.sleep(500);
      assertThat(restore.isAlive()).as("left alone while its page client runs").isTrue();
      clientAlive.set(false);
      assertThat(restore.waitFor(5, TimeUnit.SECONDS)).as("killed once its page client ended").isTrue();
      assertThat(child.onExit().get(5, TimeUnit.SECONDS).isAlive()).isFalse();
      assertThat(w.killed()).isEqualTo(2);
      assertThat(other.isAlive()).isTrue();
    } finally {
      other.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
      other.destroyForcibly();
      restore.destroyForcibly();
    }
  }

  @Test
  void aRestoreThatEndsFirstIsNotTouched() throws Exception {
    Path dir = work.resolve("work-restore/redis");
    Process restore = fakeRestore(dir);
    try {
      LazyRestoreWatch w = LazyRestoreWatch.start(() -> false, dir, Duration.ofMillis(500));
      w.close(); // the restore returned before the grace ran out
      Thread.sleep(900);
      assertThat(restore.isAlive()).isTrue();
      assertThat(w.killed()).isZero();
    } finally {
      restore.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
      restore.destroyForcibly();
    }
  }
}
