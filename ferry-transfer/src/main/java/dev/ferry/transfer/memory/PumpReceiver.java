package dev.ferry.transfer.memory;

import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Target side of the page pump: accepts its two connections (bulk and priority lanes, see
 * {@link PumpProtocol}), stores what they carry in a {@link TargetPageStore}, sends the store's
 * wants on the priority lane, and acknowledges on the bulk lane once everything verified.
 *
 * <p>A pump whose connections break (its agent killed and restarted, the link cut) may connect
 * again within the reconnect window and send its pages anew: the store keeps what arrived, and
 * the pages still waited for are asked for again. Pages that fail their checksum or a pump that
 * contradicts itself end the store at once: that is not a broken connection.
 */
public final class PumpReceiver implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(PumpReceiver.class);
  private final ServerSocket server;
  private final TargetPageStore store;
  private final CompletableFuture<Long> done = new CompletableFuture<>();
  private final LinkedBlockingQueue<long[]> wants = new LinkedBlockingQueue<>();
  private final int stallMs;
  private final int reconnectMs;
  private volatile Socket bulk;
  private volatile Socket priority;
  private volatile int sessions;

  /** A pump whose connection breaks is not waited for. */
  public PumpReceiver(String bindIp, TargetPageStore store, int stallMs) throws IOException {
    this(bindIp, store, stallMs, 0);
  }

  /**
   * Listens on {@code bindIp} (this host's address on the hosts' network), any free port.
   *
   * @param stallMs how long the bulk lane may stay silent before its connection counts as broken
   * @param reconnectMs how long a pump whose connections broke is waited for (0: not at all)
   */
  public PumpReceiver(String bindIp, TargetPageStore store, int stallMs, int reconnectMs) throws IOException {
    this(bindIp, store, stallMs, reconnectMs, dev.ferry.transfer.PeerTls.PLAIN);
  }

  /**
   * As {@link #PumpReceiver(String, TargetPageStore, int, int)}, the pump's connections over
   * {@code tls} (mutual TLS: a pump without a certificate of the lab's CA is refused in the
   * handshake, before any page is read).
   */
  public PumpReceiver(String bindIp, TargetPageStore store, int stallMs, int reconnectMs, dev.ferry.transfer.PeerTls tls)
      throws IOException {
    this.server = tls.secure() ? tls.listen(bindIp, 0, 2) : new ServerSocket(0, 2, InetAddress.getByName(bindIp));
    this.store = store;
    this.stallMs = stallMs;
    this.reconnectMs = reconnectMs;
    store.onWant((pid, vaddr, count) -> wants.add(new long[] {pid, vaddr, count}));
    Thread t = new Thread(this::run, "ferry-pump-receiver");
    t.setDaemon(true);
    t.start();
  }

  public String address() {
    return server.getInetAddress().getHostAddress() + ":" + server.getLocalPort();
  }

  /** Completes with the pages received once all arrived, or exceptionally. */
  public CompletableFuture<Long> done() {
    return done;
  }

  /** Pump connections (pairs of lanes) accepted so far: more than 1 means the pump came back. */
  public int sessions() {
    return sessions;
  }

  private void run() {
    try (server) {
      while (true) {
        try {
          long total = session();
          done.complete(total);
          return;
        } catch (ConnectionBroken e) {
          if (reconnectMs <= 0) {
            throw new IOException(e.getMessage(), e);
          }
          LOG.warn("page pump connection broke ({}); waiting up to {} s for the source to connect again",
              e.getMessage(), reconnectMs / 1000);
          server.setSoTimeout(reconnectMs);
        } finally {
          closeQuietly(bulk);
          closeQuietly(priority);
        }
      }
    } catch (java.net.SocketTimeoutException e) {
      fail(new IOException("the page pump did not connect again within " + reconnectMs / 1000 + " s", e));
    } catch (IOException | RuntimeException e) {
      fail(e);
    }
  }

  private void fail(Exception e) {
    LOG.warn("page pump from the source failed: {}", e.getMessage());
    store.fail("the page pump from the source failed: " + e.getMessage());
    done.completeExceptionally(e);
  }

  /** One pair of connections until every page arrived; {@link ConnectionBroken} if they broke. */
  private long session() throws IOException {
    bulk = null;
    priority = null;
    // both lanes are taken in before either is read: a pump connects (and, over TLS, completes
    // its handshake) on both before it names them
    Socket[] lanes = new Socket[2];
    for (int i = 0; i < 2; i++) {
      Socket s;
      try {
        s = server.accept();
      } catch (java.net.SocketTimeoutException e) {
        if (i == 0) {
          throw e;
        }
        throw new ConnectionBroken("the pump opened one lane only", e);
      }
      s.setTcpNoDelay(true);
      try {
        dev.ferry.transfer.PeerTls.handshake(s, stallMs > 0 ? stallMs : 10_000);
      } catch (IOException e) {
        // a peer the lab's CA did not sign (or none): dropped, and the store goes on waiting for its pump
        LOG.warn("refused a connection to the page pump's port from {}: {}", s.getRemoteSocketAddress(), e.getMessage());
        dev.ferry.transfer.PeerTls.abort(s);
        i--;
        continue;
      }
      server.setSoTimeout(stallMs); // the second lane follows the first at once
      lanes[i] = s;
    }
    for (Socket s : lanes) {
      s.setSoTimeout(stallMs);
      byte lane = (byte) s.getInputStream().read();
      s.setSoTimeout(0); // the priority lane may stay quiet for long: only the bulk lane's silence counts (below)
      if (lane == PumpProtocol.LANE_BULK && bulk == null) {
        bulk = s;
      } else if (lane == PumpProtocol.LANE_PRIORITY && priority == null) {
        priority = s;
      } else {
        closeQuietly(lanes[0]);
        closeQuietly(lanes[1]);
        throw new IOException("a page pump connection named no lane, or one already open (" + lane + ")");
      }
    }
    sessions++;
    if (sessions > 1) {
      LOG.info("page pump connected again (connection {}): {} pages were here already", sessions, store.readyPages());
    }
    bulk.setSoTimeout(stallMs);
    wants.clear();
    store.askAgain(); // what the previous connection was asked for and never sent
    DataOutputStream wantOut = new DataOutputStream(priority.getOutputStream());
    Thread writer = new Thread(() -> writeWants(wantOut), "ferry-pump-wants");
    writer.setDaemon(true);
    writer.start();
    Socket prioLane = priority;
    CompletableFuture<long[]> fast = CompletableFuture.supplyAsync(() -> {
      try {
        return receive(prioLane);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    DataOutputStream ackOut = new DataOutputStream(bulk.getOutputStream());
    long total;
    try {
      long[] main = receive(bulk);
      long[] prio = fast.get(60, TimeUnit.SECONDS);
      total = main[0] + prio[0];
      if (main[1] != total || prio[1] != prio[0]) {
        throw new IOException("pump sent " + main[1] + " pages, " + total + " arrived");
      }
    } catch (ConnectionBroken e) {
      throw e;
    } catch (Exception e) {
      Throwable cause = e instanceof java.util.concurrent.ExecutionException ee ? ee.getCause() : e;
      if (cause instanceof java.io.UncheckedIOException u && u.getCause() instanceof ConnectionBroken b) {
        throw b;
      }
      String why = cause.getMessage();
      try {
        ackOut.writeByte(PumpProtocol.REFUSED);
        ackOut.writeUTF(String.valueOf(why));
        ackOut.flush();
      } catch (IOException ignored) {
        // the refusal is the store's failure below; telling the pump is a courtesy
      }
      throw new IOException(why, e);
    } finally {
      writer.interrupt();
    }
    store.complete();
    ackOut.writeByte(PumpProtocol.ACK);
    ackOut.writeLong(total);
    ackOut.flush();
    return total;
  }

  /** One lane until its END; a failure to read from the connection is a {@link ConnectionBroken}. */
  private long[] receive(Socket lane) throws IOException {
    DataInputStream in = new DataInputStream(new BufferedInputStream(new BrokenAware(lane.getInputStream()), 1 << 20));
    return store.receive(in);
  }

  /** The pump's connection ended or went silent (as opposed to sending something wrong). */
  static final class ConnectionBroken extends IOException {
    ConnectionBroken(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** Turns read failures and an early end of the stream into {@link ConnectionBroken}. */
  private static final class BrokenAware extends java.io.FilterInputStream {
    BrokenAware(java.io.InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      int b;
      try {
        b = super.read();
      } catch (IOException e) {
        throw new ConnectionBroken(e.toString(), e);
      }
      if (b < 0) {
        throw new ConnectionBroken("the pump closed its connection before its end", null);
      }
      return b;
    }

    @Override
    public int read(byte[] buf, int off, int len) throws IOException {
      int n;
      try {
        n = super.read(buf, off, len);
      } catch (IOException e) {
        throw new ConnectionBroken(e.toString(), e);
      }
      if (n < 0) {
        throw new ConnectionBroken("the pump closed its connection before its end", null);
      }
      return n;
    }
  }

  private void writeWants(DataOutputStream out) {
    try {
      while (true) {
        long[] w = wants.take();
        out.writeByte(PumpProtocol.WANT);
        out.writeLong(w[0]);
        out.writeLong(w[1]);
        out.writeInt((int) w[2]);
        out.flush();
      }
    } catch (InterruptedException | IOException e) {
      // pump over
    }
  }

  private static void closeQuietly(Socket s) {
    if (s != null) {
      dev.ferry.transfer.PeerTls.abort(s); // a TLS socket's close would first wait to send a close_notify
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    closeQuietly(bulk);
    closeQuietly(priority);
  }
}
