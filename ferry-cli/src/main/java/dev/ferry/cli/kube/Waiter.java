package dev.ferry.cli.kube;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * Follows a resource's status until it ends: prints a line whenever what it shows changes, and
 * says whether it ended well. Polls (every half second), which works on every API server and
 * through every proxy.
 */
final class Waiter<S> {
  private final Supplier<S> read;
  private final java.util.function.Function<S, String> line;
  private final Predicate<S> ended;
  private final Duration poll;

  Waiter(Supplier<S> read, java.util.function.Function<S, String> line, Predicate<S> ended, Duration poll) {
    this.read = read;
    this.line = line;
    this.ended = ended;
    this.poll = poll;
  }

  /**
   * The last status read once it ended, or null when {@code timeout} (zero: none) passed first.
   * What {@code read} throws (the resource was deleted meanwhile) ends the wait.
   */
  S follow(PrintWriter out, String label, Duration timeout) throws InterruptedException {
    long deadline = timeout.isZero() ? Long.MAX_VALUE : System.nanoTime() + timeout.toNanos();
    String shown = null;
    while (true) {
      S st = read.get();
      String now = line.apply(st);
      if (!now.equals(shown)) {
        out.println(label + ": " + now);
        out.flush();
        shown = now;
      }
      if (st != null && ended.test(st)) {
        return st;
      }
      if (System.nanoTime() > deadline) {
        return null;
      }
      Thread.sleep(poll.toMillis());
    }
  }
}
