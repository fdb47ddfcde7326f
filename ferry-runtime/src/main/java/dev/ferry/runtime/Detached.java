package dev.ferry.runtime;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a runtime command that starts a container and returns ({@code runc run -d}, {@code runc
 * restore -d}, {@code runsc run -detach}): stdin from /dev/null and its output in a log file,
 * since the container's first process inherits these descriptors and a pipe would keep us
 * waiting for ever.
 */
final class Detached {
  private Detached() {}

  /**
   * Runs {@code cmd} to its end (killed with its children after {@code timeout}: CRIU runs as
   * the runtime's child, and a stuck one must not outlive the attempt).
   *
   * @return exit code 0 on success, 124 on a timeout, else the command's, with the log as stderr
   * @throws CommandFailedException when it cannot be started (exit code 127)
   */
  static Exec.Result run(List<String> cmd, Map<String, String> env, Path log, Duration timeout) {
    return await(start(cmd, env, log), cmd, log, timeout);
  }

  /**
   * Starts {@code cmd} as {@link #run} does, without waiting for it.
   *
   * @throws CommandFailedException when it cannot be started (exit code 127)
   */
  static Process start(List<String> cmd, Map<String, String> env, Path log) {
    try {
      Files.createDirectories(log.getParent());
      ProcessBuilder pb = new ProcessBuilder(cmd);
      pb.environment().putAll(env);
      pb.redirectInput(new File("/dev/null"));
      pb.redirectOutput(log.toFile());
      pb.redirectErrorStream(true);
      return pb.start();
    } catch (IOException e) {
      throw new CommandFailedException(new Exec.Result(cmd, 127, "", e.getMessage()));
    }
  }

  /** Waits for {@code p} ({@link #start}ed with {@code cmd} and {@code log}) as {@link #run} does. */
  static Exec.Result await(Process p, List<String> cmd, Path log, Duration timeout) {
    try {
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        return new Exec.Result(cmd, 124, "", "timed out after " + timeout.toMinutes() + " min");
      }
      return new Exec.Result(cmd, p.exitValue(), "", p.exitValue() == 0 ? "" : Files.readString(log));
    } catch (IOException e) {
      return new Exec.Result(cmd, p.exitValue(), "", "(its log " + log + " is unreadable: " + e.getMessage() + ")");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
