package dev.ferry.agent;

import java.util.LinkedHashMap;
import java.util.Map;

/** Where the time of a step went: each {@link #lap} adds the time since the previous one to its name. */
final class Laps {
  private final Map<String, Long> ms = new LinkedHashMap<>();
  private long last = System.nanoTime();

  void lap(String name) {
    long now = System.nanoTime();
    ms.merge(name, (now - last) / 1_000_000, Long::sum);
    last = now;
  }

  /** The next lap starts at {@code nanos} (a {@link System#nanoTime} instant already past); the time before is not counted. */
  void startAt(long nanos) {
    last = nanos;
  }

  long get(String name) {
    return ms.getOrDefault(name, 0L);
  }

  Map<String, Long> asMap() {
    return Map.copyOf(ms);
  }

  /** Now, in microseconds since the epoch (to compare moments across agents). */
  static long epochMicros() {
    java.time.Instant t = java.time.Instant.now();
    return t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
  }
}
