package dev.ferry.runtime;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Runs host commands (ip, runc, criu, iptables) with a time limit and keeps what they said. */
public final class Exec {
  private static final Logger LOG = LoggerFactory.getLogger(Exec.class);
  private static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

  /** What a finished command returned. */
  public record Result(List<String> command, int exitCode, String stdout, String stderr) {
    public boolean ok() {
      return exitCode == 0;
    }

    /** Throws {@link CommandFailedException} unless the command succeeded. */
    public Result check() {
      if (!ok()) {
        throw new CommandFailedException(this);
      }
      return this;
    }
  }

  private Exec() {}

  public static Result run(String... command) {
    return run(List.of(command), DEFAULT_TIMEOUT, Map.of());
  }

  public static Result run(List<String> command) {
    return run(command, DEFAULT_TIMEOUT, Map.of());
  }

  /** Runs and fails with a {@link CommandFailedException} when the exit code is not 0. */
  public static Result checked(String... command) {
    return run(command).check();
  }

  public static Result checked(List<String> command) {
    return run(command).check();
  }

  /**
   * Runs {@code command} with stdin from /dev/null, output captured in temporary files
   * (not pipes: a daemonised child that inherits a pipe would make us wait for ever).
   */
  public static Result run(List<String> command, Duration timeout, Map<String, String> env) {
    return run(command, timeout, env, null);
  }

  /** Runs {@code command} with {@code input} on its stdin (through a file, like the output). */
  public static Result runWithInput(List<String> command, String input) {
    Path in = null;
    try {
      in = Files.createTempFile("ferry-exec", ".in");
      Files.writeString(in, input);
      return run(command, DEFAULT_TIMEOUT, Map.of(), in);
    } catch (IOException e) {
      return new Result(command, 127, "", "cannot pass input to " + command.get(0) + ": " + e.getMessage());
    } finally {
      delete(in);
    }
  }

  private static Result run(List<String> command, Duration timeout, Map<String, String> env, Path input) {
    Path out = null;
    Path err = null;
    try {
      out = Files.createTempFile("ferry-exec", ".out");
      err = Files.createTempFile("ferry-exec", ".err");
      ProcessBuilder pb = new ProcessBuilder(command);
      pb.environment().putAll(env);
      pb.redirectInput(ProcessBuilder.Redirect.from(input != null ? input.toFile() : new File("/dev/null")));
      pb.redirectOutput(out.toFile());
      pb.redirectError(err.toFile());
      LOG.debug("exec {}", command);
      Process p = pb.start();
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        p.waitFor(5, TimeUnit.SECONDS);
        return new Result(command, 124, read(out), read(err) + "\n(killed after " + timeout.toSeconds() + " s)");
      }
      return new Result(command, p.exitValue(), read(out), read(err));
    } catch (IOException e) {
      return new Result(command, 127, "", "cannot run " + command.get(0) + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while running " + command, e);
    } finally {
      delete(out);
      delete(err);
    }
  }

  /** Builds a command line from parts and lists. */
  public static List<String> cmd(Object... parts) {
    List<String> c = new ArrayList<>();
    for (Object part : parts) {
      if (part instanceof List<?> l) {
        l.forEach(x -> c.add(String.valueOf(x)));
      } else {
        c.add(String.valueOf(part));
      }
    }
    return c;
  }

  private static String read(Path p) throws IOException {
    return Files.readString(p, StandardCharsets.UTF_8);
  }

  private static void delete(Path p) {
    if (p != null) {
      try {
        Files.deleteIfExists(p);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
