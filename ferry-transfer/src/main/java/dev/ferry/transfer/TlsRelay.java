package dev.ferry.transfer;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries a plain TCP protocol that Ferry does not speak itself (CRIU's page server, which
 * post-copy's page client on the target dials) across hosts over {@link PeerTls}'s mutual TLS:
 * two relays, one per host, each listening for one side and dialling the other.
 * <ul>
 *   <li>{@link #fromPeers} on the host of the service: accepts TLS connections from agents of the
 *       lab's CA on this host's address and forwards each to the service on this host;
 *   <li>{@link #toPeer} on the other host: accepts plain connections on loopback (the local
 *       client) and forwards each over TLS to a {@code fromPeers} relay.
 * </ul>
 * Each connection is relayed byte for byte in both directions by two threads; the pair is
 * closed once both ended. The end of the service's side is passed on as a half-close. The end of
 * a peer's side (its agent's relay closed, its client killed: a connection cut on purpose and an
 * orderly one look alike over TCP) reaches the service as a reset, never as an orderly end:
 * CRIU's page server takes a client that just closes for "all pages sent" and kills the frozen
 * tree the source still needs, where a reset fails the dump and thaws the tree. {@link #close}
 * stops accepting and resets every connection under way.
 */
public final class TlsRelay implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(TlsRelay.class);
  private static final int BUFFER = 1 << 16;

  /** Opens the relay's outgoing side of one connection. */
  @FunctionalInterface
  private interface Dialer {
    Socket dial() throws IOException;
  }

  private final ServerSocket server;
  private final Dialer dialer;
  private final String name;
  private final Set<Socket> open = ConcurrentHashMap.newKeySet();
  /** True on the service's host: a peer's end is passed to the service as a reset. */
  private final boolean servesPeers;
  private volatile boolean closed;

  private TlsRelay(ServerSocket server, Dialer dialer, String name, boolean servesPeers) {
    this.server = server;
    this.dialer = dialer;
    this.name = name;
    this.servesPeers = servesPeers;
    Thread t = new Thread(this::acceptLoop, "ferry-relay-" + name);
    t.setDaemon(true);
    t.start();
  }

  /**
   * Listens on {@code listenIp} (any free port) for agents of the lab's CA and relays each
   * connection to {@code service} ("ip:port", plain, on this host).
   */
  public static TlsRelay fromPeers(PeerTls tls, String listenIp, String service) throws IOException {
    requireSecure(tls);
    String[] hp = service.split(":");
    return new TlsRelay(tls.listen(listenIp, 0, 8), () -> {
      Socket s = new Socket();
      try {
        s.setTcpNoDelay(true);
        s.connect(new java.net.InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 5000);
        return s;
      } catch (IOException e) {
        s.close();
        throw e;
      }
    }, "in-" + hp[1], true);
  }

  /**
   * Listens on loopback (any free port) and relays each connection over mutual TLS to {@code
   * peer}, a {@link #fromPeers} relay ("ip:port").
   */
  public static TlsRelay toPeer(PeerTls tls, String peer) throws IOException {
    requireSecure(tls);
    ServerSocket s = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
    return new TlsRelay(s, () -> tls.connect(peer, 5000), "out-" + peer.substring(peer.indexOf(':') + 1), false);
  }

  private static void requireSecure(PeerTls tls) {
    if (!tls.secure()) {
      throw new IllegalArgumentException("a TLS relay needs this host's TLS identity; it has none (plain TCP)");
    }
  }

  /** Where the relay listens, "ip:port". */
  public String address() {
    return server.getInetAddress().getHostAddress() + ":" + server.getLocalPort();
  }

  private void acceptLoop() {
    while (!closed) {
      Socket in;
      try {
        in = server.accept();
      } catch (IOException e) {
        if (!closed) {
          LOG.warn("relay {} stopped accepting: {}", name, e.getMessage());
        }
        return;
      }
      Thread t = new Thread(() -> relay(in), "ferry-relay-" + name + "-conn");
      t.setDaemon(true);
      t.start();
    }
  }

  /** Relays one accepted connection until both directions ended. */
  private void relay(Socket in) {
    open.add(in);
    Socket out = null;
    try {
      in.setTcpNoDelay(true);
      // a peer the lab's CA did not sign never reaches the service: the service (CRIU's page
      // server) may take a connection that just closes for "all pages sent"
      PeerTls.handshake(in, 5000);
      out = dialer.dial();
      open.add(out);
      if (closed) {
        return;
      }
      Socket a = in;
      Socket b = out;
      Thread back = new Thread(() -> pipe(b, a, false), "ferry-relay-" + name + "-back");
      back.setDaemon(true);
      back.start();
      pipe(a, b, servesPeers);
      back.join();
    } catch (IOException e) {
      LOG.warn("relay {}: {}", name, e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      cut(in);
      if (out != null) {
        cut(out);
      }
    }
  }

  /**
   * Copies {@code from} to {@code to} until {@code from} ends, then half-closes {@code to} (or
   * with {@code resetAtEnd} resets it).
   */
  private void pipe(Socket from, Socket to, boolean resetAtEnd) {
    byte[] buf = new byte[BUFFER];
    try {
      InputStream src = from.getInputStream();
      OutputStream dst = to.getOutputStream();
      int n;
      while ((n = src.read(buf)) > 0) {
        dst.write(buf, 0, n);
        dst.flush();
      }
      if (resetAtEnd) {
        reset(to);
      } else {
        to.shutdownOutput();
      }
    } catch (IOException e) {
      // one side broke: the other learns it from a reset, never from an orderly end (which CRIU's
      // page server takes for "all pages sent")
      reset(from);
      reset(to);
    }
  }

  private void cut(Socket s) {
    open.remove(s);
    PeerTls.abort(s);
  }

  private void reset(Socket s) {
    try {
      s.setSoLinger(true, 0); // close sends RST
    } catch (IOException e) {
      // closed already
    }
    cut(s);
  }

  /**
   * Sends {@code bytes} through a pair of relays over loopback to an echo service and back, a
   * few times: a host's first post-copy over TLS otherwise sets its relays up and shakes hands
   * through code not yet compiled, with the pod frozen (~50 ms each side).
   */
  public static void warmUp(PeerTls tls, int bytes, int times) throws IOException {
    byte[] sent = new byte[bytes];
    new java.util.Random(bytes).nextBytes(sent);
    for (int round = 0; round < times; round++) {
      try (ServerSocket echo = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
          TlsRelay in = fromPeers(tls, "127.0.0.1", "127.0.0.1:" + echo.getLocalPort());
          TlsRelay out = toPeer(tls, in.address())) {
        Thread server = new Thread(() -> {
          try (Socket s = echo.accept()) {
            s.getOutputStream().write(s.getInputStream().readNBytes(bytes)); // then closes: the end reaches the client
          } catch (IOException e) {
            // the round fails on the client's side
          }
        }, "ferry-relay-warmup");
        server.setDaemon(true);
        server.start();
        String[] hp = out.address().split(":");
        try (Socket c = new Socket(hp[0], Integer.parseInt(hp[1]))) {
          c.setSoTimeout(10_000);
          c.getOutputStream().write(sent);
          byte[] back = c.getInputStream().readAllBytes();
          if (!java.util.Arrays.equals(back, sent)) {
            throw new IOException("relay warm-up: " + back.length + " bytes came back of " + sent.length + " sent");
          }
        }
      }
    }
  }

  /** Stops accepting and resets every relayed connection. */
  @Override
  public void close() {
    closed = true;
    try {
      server.close();
    } catch (IOException e) {
      // closed already
    }
    for (Socket s : open) {
      reset(s);
    }
  }
}
