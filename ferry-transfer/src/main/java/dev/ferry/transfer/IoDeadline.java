package dev.ferry.transfer;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A timeout for blocking channel I/O, which honours no SO_TIMEOUT: between {@link #begin} and
 * {@link #end}, a watchdog thread (one for all, every 250 ms) runs the connection's breaker (which
 * closes its channel, so that the blocked call fails) once the call has taken longer than its
 * timeout. The caller then tells a timeout from other failures by {@link #expired()}.
 */
public final class IoDeadline {
  private static final Set<IoDeadline> ACTIVE = ConcurrentHashMap.newKeySet();
  private static Thread watchdog;

  private final Runnable breaker;
  private volatile long since;
  private volatile long timeoutNanos;
  private volatile boolean expired;

  /** @param breaker ends the connection at once (closes its channel) */
  public IoDeadline(Runnable breaker) {
    this.breaker = breaker;
  }

  /** A blocking call begins that may take {@code timeoutNanos} at most (0 or less: no limit). */
  public void begin(long timeoutNanos) {
    if (timeoutNanos <= 0) {
      return;
    }
    this.timeoutNanos = timeoutNanos;
    this.since = System.nanoTime();
    ACTIVE.add(this);
    startWatchdog();
  }

  /** The blocking call is over. */
  public void end() {
    ACTIVE.remove(this);
  }

  /** Whether a call overran and the connection was broken for it. */
  public boolean expired() {
    return expired;
  }

  private static synchronized void startWatchdog() {
    if (watchdog == null) {
      watchdog = new Thread(IoDeadline::watch, "ferry-io-deadlines");
      watchdog.setDaemon(true);
      watchdog.start();
    }
  }

  private static void watch() {
    while (true) {
      try {
        Thread.sleep(250);
      } catch (InterruptedException e) {
        return;
      }
      long now = System.nanoTime();
      for (IoDeadline d : ACTIVE) {
        if (now - d.since > d.timeoutNanos && ACTIVE.remove(d)) {
          d.expired = true;
          try {
            d.breaker.run();
          } catch (RuntimeException e) {
            // closed already
          }
        }
      }
    }
  }
}
