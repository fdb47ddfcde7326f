package dev.ferry.cli.kube;

import java.time.Duration;
import picocli.CommandLine.Option;

/** How a {@code ferry kube} command follows what it started: {@code --wait}, {@code --timeout}. */
final class WaitOptions {
  @Option(names = "--wait",
      description = "follow it from its status until it ends; exit 0 only if it ended as asked")
  boolean waitForEnd;

  @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "0",
      description = "with --wait, give up waiting after this long (default: 0, no limit)")
  long timeoutSeconds;

  @Option(names = "--poll-ms", hidden = true, defaultValue = "500")
  long pollMs;

  Duration poll() {
    return Duration.ofMillis(pollMs);
  }

  Duration timeout() {
    return Duration.ofSeconds(timeoutSeconds);
  }
}
