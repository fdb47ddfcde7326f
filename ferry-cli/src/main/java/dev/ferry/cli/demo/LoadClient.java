package dev.ferry.cli.demo;

import dev.ferry.api.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Keeps writing keys to Redis over one TCP connection, counting every acknowledged write and
 * the longest gap between two acknowledgements, until told to stop (a file named "stop" in
 * its control directory); then reads every acknowledged key back and counts what was lost.
 */
public final class LoadClient {
  private final String ip;
  private final int port;
  private final Path control;
  private final String prefix = "k" + Long.toHexString(System.nanoTime()) + ":";
  private final LoadResult r = new LoadResult();

  private final long populateMiB;
  /**
   * Whether to open a new connection and go on writing when the connection breaks (for runtimes
   * that cannot keep it, runsc); otherwise the client stops at the first broken write.
   */
  private boolean reconnect;
  /** With {@link #reconnect}: an unanswered write is given up after this long, and the connection with it. */
  static final int RECONNECT_TIMEOUT_MS = 500;
  /** With {@link #reconnect}: a connection attempt unanswered this long is retried with a fresh SYN. */
  static final int RECONNECT_CONNECT_TIMEOUT_MS = 100;

  /**
   * @param populateMiB data to load into Redis first (DEBUG POPULATE, 1 KiB values), 0 for none
   */
  public LoadClient(String ip, int port, Path control, long populateMiB) {
    this.ip = ip;
    this.port = port;
    this.control = control;
    this.populateMiB = populateMiB;
  }

  /** Reconnects and goes on writing when the connection breaks (see {@link #reconnect}). */
  public LoadClient reconnecting(boolean r) {
    this.reconnect = r;
    return this;
  }

  public LoadResult run() throws Exception {
    Files.createDirectories(control);
    RespConnection c = connect();
    r.localPort = c.localPort();
    if (populateMiB > 0) {
      c.call("DEBUG", "POPULATE", String.valueOf(populateMiB * 1024), "bulk", "1024");
    }
    if (reconnect) {
      c.timeout(RECONNECT_TIMEOUT_MS); // a write unanswered this long: the connection is given up for a new one
    }
    long lastAck = 0;
    long lastStatus = 0;
    long i = 0;
    Path stop = control.resolve("stop");
    while (true) {
      long now = System.currentTimeMillis();
      if (now - lastStatus >= 100) {
        lastStatus = now;
        Json.writeFile(control.resolve("status.json"), r);
        if (Files.exists(stop)) {
          break;
        }
      }
      try {
        Object reply = c.call("SET", prefix + i, "v" + i);
        if (!"OK".equals(reply)) {
          throw new IOException("SET answered " + reply);
        }
      } catch (IOException e) {
        r.unacked++;
        r.connectionPreserved = false;
        r.error = "write " + i + " failed: " + e.getMessage();
        if (!reconnect) {
          break;
        }
        // the same key again on a new connection: its write may or may not have landed, and
        // only an acknowledged one counts
        c.close();
        c = reconnectUntilStop(stop);
        if (c == null) {
          break;
        }
        r.reconnects++;
        continue;
      }
      long t = System.currentTimeMillis();
      if (reconnectedAt != 0) {
        r.maxReconnectMs = Math.max(r.maxReconnectMs, t - lastAck);
        reconnectedAt = 0;
      }
      if (lastAck != 0 && t - lastAck > r.maxGapMs) {
        r.maxGapMs = t - lastAck;
        r.maxGapStartEpochMs = lastAck;
        r.maxGapEndEpochMs = t;
      }
      lastAck = t;
      r.acked++;
      r.connected = true;
      i++;
    }
    verify(c);
    Json.writeFile(control.resolve("result.json"), r);
    Json.writeFile(control.resolve("status.json"), r);
    c.close();
    return r;
  }

  /** When the client last opened a new connection after a break (0: none pending). */
  private long reconnectedAt;

  /** A new connection, tried every 20 ms (each attempt waits 100 ms for its SYN to be answered) until one answers or the client is told to stop (null then). */
  private RespConnection reconnectUntilStop(Path stop) throws InterruptedException {
    while (!Files.exists(stop)) {
      try {
        RespConnection c = new RespConnection(ip, port, RECONNECT_CONNECT_TIMEOUT_MS, RECONNECT_TIMEOUT_MS);
        c.call("PING");
        reconnectedAt = System.currentTimeMillis();
        return c;
      } catch (IOException e) {
        Thread.sleep(20);
      }
    }
    return null;
  }

  private RespConnection connect() throws Exception {
    long deadline = System.currentTimeMillis() + 30_000;
    while (true) {
      try {
        RespConnection c = new RespConnection(ip, port, 20_000); // longer than any freeze we expect
        c.call("PING");
        return c;
      } catch (IOException e) {
        if (System.currentTimeMillis() > deadline) {
          throw new IOException("cannot reach redis at " + ip + ":" + port + ": " + e.getMessage());
        }
        Thread.sleep(100);
      }
    }
  }

  /** Reads every acknowledged key back, on the same connection if it still works. */
  private void verify(RespConnection c) throws Exception {
    RespConnection reader = c;
    r.verifiedOnSameConnection = r.connectionPreserved;
    if (!r.connectionPreserved) {
      reader = connect(); // only to count what was lost
    }
    long lost = 0;
    for (long from = 0; from < r.acked; from += 1000) {
      long to = Math.min(r.acked, from + 1000);
      List<String> args = new ArrayList<>();
      args.add("MGET");
      for (long k = from; k < to; k++) {
        args.add(prefix + k);
      }
      List<?> values = (List<?>) reader.call(args.toArray(new String[0]));
      for (int j = 0; j < values.size(); j++) {
        if (!("v" + (from + j)).equals(values.get(j))) {
          lost++;
        }
      }
    }
    r.lost = lost;
    r.verified = true;
    if (reader != c) {
      reader.close();
    }
  }
}
