package dev.ferry.runtime;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches a lazy restore ({@code runc restore --lazy-pages}) while it runs. Should its page
 * client end first, the restore can never get its pages: CRIU fails ("Failed sending restore
 * finished indication"), kills the tree it restored and then stays blocked in wait4 (seen twice
 * here: until runc's 10 min timeout, with the migration and the target agent's call held up all
 * along). The watch then kills the restore's processes, runc and everything under it (CRIU and
 * the half-restored tree), so that the restore fails at once and the migration rolls back.
 */
public final class LazyRestoreWatch implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(LazyRestoreWatch.class);
  private final Thread thread;
  private volatile boolean closed;
  private volatile int killed;

  private LazyRestoreWatch(BooleanSupplier clientAlive, Path workDir, Duration grace) {
    thread = new Thread(() -> watch(clientAlive, workDir, grace), "ferry-lazy-restore-watch");
    thread.setDaemon(true);
    thread.start();
  }

  /**
   * Starts watching the restore whose {@code --work-path} is {@code workDir}.
   *
   * @param clientAlive whether its page client still runs
   * @param grace how long the restore may outlive its page client before it is killed
   */
  public static LazyRestoreWatch start(BooleanSupplier clientAlive, Path workDir, Duration grace) {
    return new LazyRestoreWatch(clientAlive, workDir, grace);
  }

  /** Processes the watch killed (0 unless the page client ended first). */
  public int killed() {
    return killed;
  }

  private void watch(BooleanSupplier clientAlive, Path workDir, Duration grace) {
    long deadSince = 0;
    while (!closed) {
      if (clientAlive.getAsBoolean()) {
        deadSince = 0;
      } else if (deadSince == 0) {
        deadSince = System.nanoTime();
      } else if (System.nanoTime() - deadSince > grace.toNanos()) {
        List<ProcessHandle> restores = Procs.withCommandLineContaining("restore", "--work-path " + workDir + " ");
        for (ProcessHandle p : restores) {
          List<ProcessHandle> tree = p.descendants().toList();
          p.destroyForcibly();
          tree.forEach(ProcessHandle::destroyForcibly);
          killed += 1 + tree.size();
        }
        if (!restores.isEmpty()) {
          LOG.warn("the page client of the lazy restore in {} ended before it: {} process(es) of the restore killed",
              workDir, killed);
        }
        return;
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    thread.interrupt();
  }
}
