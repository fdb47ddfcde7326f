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
 *
 * <p>A {@link #fromPeers} relay may hold what the service sends to peers to bandwidth caps (the
 * migration's, the host's): post-copy's pages then count against them like every other byte a
 * migration sends. Over plain TCP ({@link PeerTls#PLAIN}) it relays only for that.
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
  /** Caps on what goes to peers (empty: none). */
  private final java.util.List<RateLimiter> caps;
  private volatile boolean closed;

  private TlsRelay(ServerSocket server, Dialer dialer, String name, boolean servesPeers, java.util.List<RateLimiter> caps) {
    this.server = server;
    this.dialer = dialer;
    this.name = name;
    this.servesPeers = servesPeers;
    this.caps = caps;
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
    return fromPeers(tls, listenIp, service, java.util.List.of());
  }

  /**
   * As {@link #fromPeers(PeerTls, String, String)}, holding what the service sends to peers to
   * {@code caps} (null entries ignored); over {@link PeerTls#PLAIN} too, where it relays plain
   * TCP only to hold it to them.
   */
  public static TlsRelay fromPeers(PeerTls tls, String listenIp, String service, java.util.List<RateLimiter> caps)
      throws IOException {
    java.util.List<RateLimiter> held = caps.stream().filter(java.util.Objects::nonNull).toList();
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
    }, "in-" + hp[1], true, held);
  }

  /**
   * Listens on loopback (any free port) and relays each connection over mutual TLS to {@code
   * peer}, a {@link #fromPeers} relay ("ip:port").
   */
  public static TlsRelay toPeer(PeerTls tls, String peer) throws IOException {
    requireSecure(tls);
    ServerSocket s = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
    return new TlsRelay(s, () -> tls.connect(peer, 5000), "out-" + peer.substring(peer.indexOf(':') + 1), false,
        java.util.List.of());
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
      // on the service's host, "back" carries what the service sends to the peer
      Thread back = new Thread(() -> pipe(b, a, false, servesPeers ? caps : java.util.List.of()),
          "ferry-relay-" + name + "-back");
      back.setDaemon(true);
      back.start();
      pipe(a, b, servesPeers, java.util.List.of());
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
   * with {@code resetAtEnd} resets it), each read held to {@code held}'s caps before it is written.
   */
  private void pipe(Socket from, Socket to, boolean resetAtEnd, java.util.List<RateLimiter> held) {
    byte[] buf = new byte[BUFFER];
    try {
      InputStream src = from.getInputStream();
      OutputStream dst = to.getOutputStream();
      int n;
      while ((n = src.read(buf)) > 0) {
        for (RateLimiter cap : held) {
          cap.acquire(n);
        }
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
