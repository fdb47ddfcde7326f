package dev.ferry.transfer;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A host's cap published in a file holds the processes that share it (the agent and its page
 * daemon) to the cap together, not each to the cap.
 */
class RateLimiterTest {
  private static final long CAP = 40_000_000; // bytes per second
  private static final int CHUNK = 1 << 20;
  @TempDir Path tmp;

  /** Child process: {@code RateLimiterTest$Child FILE BYTES} sends BYTES through the shared cap. */
  static final class Child {
    public static void main(String[] args) throws Exception {
      RateLimiter cap = RateLimiter.shared(Path.of(args[0]));
      System.out.println("ready");
      System.out.flush();
      long bytes = Long.parseLong(args[1]);
      for (long sent = 0; sent < bytes; sent += CHUNK) {
        cap.acquire(CHUNK);
      }
    }
  }

  @Test
  void twoProcessesOnOneFileShareTheCap() throws Exception {
    Path file = tmp.resolve("host-bandwidth.cap");
    RateLimiter here = RateLimiter.publish(file, CAP);
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
    long each = 40L * CHUNK; // ~1 s of the cap each, ~2 s together
    Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp",
        System.getProperty("java.class.path"), Child.class.getName(), file.toString(), Long.toString(each))
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    try {
      assertThat(new String(child.getInputStream().readNBytes(5))).isEqualTo("ready");
      long start = System.nanoTime();
      for (long sent = 0; sent < each; sent += CHUNK) {
        here.acquire(CHUNK);
      }
      assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
      double seconds = (System.nanoTime() - start) / 1e9;
      double mbps = 2 * each / seconds / 1e6;
      // each process alone at the cap would make ~80 MB/s together
      assertThat(mbps).as("MB/s of both processes together under a %d MB/s cap", CAP / 1_000_000)
          .isBetween(CAP / 1e6 * 0.85, CAP / 1e6 * 1.10);
      assertThat(child.exitValue()).isZero();
    } finally {
      child.destroyForcibly();
    }
  }

  @Test
  void limitersOfOneProcessOnOneFileShareTheCapToo() throws Exception {
    Path file = tmp.resolve("cap");
    RateLimiter.publish(file, CAP);
    RateLimiter a = RateLimiter.shared(file);
    RateLimiter b = RateLimiter.shared(file);
    long each = 30L * CHUNK;
    long start = System.nanoTime();
    Thread other = new Thread(() -> {
      try {
        for (long sent = 0; sent < each; sent += CHUNK) {
          b.acquire(CHUNK);
        }
      } catch (java.io.InterruptedIOException e) {
        throw new IllegalStateException(e);
      }
    });
    other.start();
    for (long sent = 0; sent < each; sent += CHUNK) {
      a.acquire(CHUNK);
    }
    other.join();
    double mbps = 2 * each / ((System.nanoTime() - start) / 1e9) / 1e6;
    assertThat(mbps).isBetween(CAP / 1e6 * 0.85, CAP / 1e6 * 1.10);
  }

  @Test
  void noCapPublishedMeansNoLimiter() throws Exception {
    Path file = tmp.resolve("cap");
    assertThat(RateLimiter.shared(file)).as("no file").isNull();
    RateLimiter.publish(file, CAP);
    assertThat(RateLimiter.shared(file).bytesPerSecond()).isEqualTo(CAP);
    assertThat(RateLimiter.publish(file, 0)).isNull();
    assertThat(file).doesNotExist();
    assertThat(RateLimiter.shared(file)).isNull();
  }
}
