package dev.ferry.transfer;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * How agents talk to each other on their data ports: mutual TLS 1.3 where each side shows a
 * certificate of the lab's CA and trusts no other ({@link #load}), or plain TCP ({@link #PLAIN})
 * where no certificates exist. A peer whose certificate the CA did not sign, or that shows none,
 * fails the handshake: nothing of it is read.
 *
 * <p>TLS runs through BoringSSL ({@link NativeTls}) where it loads: sockets are then {@link
 * TlsSocket}s, TLS driven over a socket channel with direct buffers ({@link TlsChannel}). Where it
 * does not load (another platform), through Java's JSSE ({@code SSLSocket}s), said once in the log.
 */
public final class PeerTls {
  /** Plain TCP: for agents without certificates (and for tests of what lies above). */
  public static final PeerTls PLAIN = new PeerTls(null, null, "plain TCP");

  /** Files of a host's directory (see {@link #load}). */
  public static final String CA = "ca.pem";
  public static final String CERT = "host.pem";
  public static final String KEY = "host.key";

  /**
   * The TCP connection under each JSSE socket {@link #connect} made: {@link #abort} closes it.
   * Closing the TLS socket itself would first send a close_notify, which waits for a writer
   * blocked on a dead link: a watchdog or a cancel would hang with it.
   */
  private static final Map<Socket, Socket> TRANSPORTS = Collections.synchronizedMap(new WeakHashMap<>());

  private final SSLContext context;
  /** BoringSSL's engines; null for plain TCP and where TLS goes through JSSE. */
  private final NativeTls natives;
  private final String description;

  private PeerTls(SSLContext context, NativeTls natives, String description) {
    this.context = context;
    this.natives = natives;
    this.description = description;
  }

  /**
   * Mutual TLS from {@code dir}: {@value #CA} (the only CA trusted), {@value #CERT} (this host's
   * certificate) and {@value #KEY} (its key, unencrypted PKCS#8 PEM, as {@code openssl req
   * -nodes} writes it). Through BoringSSL where it loads, else through JSSE.
   */
  public static PeerTls load(Path dir) throws IOException {
    return load(dir, NativeTls.usable());
  }

  /** As {@link #load(Path)}, through BoringSSL or JSSE as {@code boringSsl} says (tests, benchmarks). */
  static PeerTls load(Path dir, boolean boringSsl) throws IOException {
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      X509Certificate ca = (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(Files.readAllBytes(dir.resolve(CA))));
      X509Certificate cert =
          (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(Files.readAllBytes(dir.resolve(CERT))));
      PrivateKey key = privateKey(Files.readString(dir.resolve(KEY), StandardCharsets.US_ASCII), cert);
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      keys.setKeyEntry("host", key, new char[0], new Certificate[] {cert, ca});
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("lab-ca", ca);
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, new char[0]);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      SSLContext ctx = SSLContext.getInstance("TLSv1.3");
      ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      NativeTls natives = boringSsl ? NativeTls.of(key, cert, ca) : null;
      return new PeerTls(ctx, natives, "mutual TLS (" + (natives != null ? "BoringSSL" : "JSSE") + ") as "
          + cert.getSubjectX500Principal().getName() + ", trusting " + ca.getSubjectX500Principal().getName() + " only");
    } catch (GeneralSecurityException | javax.net.ssl.SSLException | RuntimeException e) {
      throw new IOException("cannot load the TLS identity in " + dir + ": " + e.getMessage(), e);
    }
  }

  private static PrivateKey privateKey(String pem, X509Certificate cert) throws GeneralSecurityException {
    if (!pem.contains("-----BEGIN PRIVATE KEY-----")) {
      throw new GeneralSecurityException("the key is not an unencrypted PKCS#8 PEM (BEGIN PRIVATE KEY)");
    }
    String b64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    return KeyFactory.getInstance(cert.getPublicKey().getAlgorithm())
        .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64)));
  }

  public boolean secure() {
    return context != null;
  }

  @Override
  public String toString() {
    return description;
  }

  /**
   * Ends a connection at once, whatever other threads are doing with it (a blocked write fails
   * at once): for a TLS socket of {@link #connect} or {@link #listen}, its TCP connection is
   * closed under it, without a close_notify.
   */
  public static void abort(Socket s) {
    if (s instanceof TlsSocket tls) {
      tls.abort();
      return;
    }
    Socket transport = TRANSPORTS.getOrDefault(s, s);
    if (transport.getChannel() != null) {
      // a thread in sendfile (a zero-copy transfer) is not woken by a close, only by a shutdown
      try {
        transport.shutdownOutput();
        transport.shutdownInput();
      } catch (IOException e) {
        // not connected, or shut already
      }
    }
    try {
      transport.close();
    } catch (IOException e) {
      // closed already
    }
  }

  /**
   * Listens on {@code ip:port} (port 0: any free one); with TLS, every client must show a
   * certificate of the CA. Plain sockets it accepts have a channel (for zero-copy transfers).
   */
  public ServerSocket listen(String ip, int port, int backlog) throws IOException {
    ServerSocket s;
    if (context == null) {
      s = java.nio.channels.ServerSocketChannel.open().socket();
    } else if (natives != null) {
      s = new TlsServerSocket(natives::serverEngine);
    } else {
      SSLServerSocket ss = (SSLServerSocket) context.getServerSocketFactory().createServerSocket();
      ss.setEnabledCipherSuites(fastestFirst(ss.getEnabledCipherSuites()));
      javax.net.ssl.SSLParameters params = ss.getSSLParameters();
      params.setUseCipherSuitesOrder(true); // the server's order decides: AES-128-GCM
      params.setNeedClientAuth(true);
      ss.setSSLParameters(params);
      ss.setNeedClientAuth(true);
      s = ss;
    }
    s.setReuseAddress(true);
    s.bind(new InetSocketAddress(InetAddress.getByName(ip), port), backlog);
    return s;
  }

  /** The cipher suite both sides prefer: 10 AES rounds instead of 14, ~15% less CPU per byte here. */
  static final String PREFERRED_SUITE = "TLS_AES_128_GCM_SHA256";

  /** {@code suites} with {@link #PREFERRED_SUITE} first (when enabled at all), the others in their order. */
  static String[] fastestFirst(String[] suites) {
    java.util.List<String> order = new java.util.ArrayList<>(java.util.List.of(suites));
    if (order.remove(PREFERRED_SUITE)) {
      order.add(0, PREFERRED_SUITE);
    }
    return order.toArray(String[]::new);
  }

  /**
   * Completes, within {@code timeoutMs}, the handshake of a socket that {@link #listen}
   * accepted (it would otherwise happen on its first read or write): a peer the CA did not sign
   * is refused here. Nothing to do for a plain socket.
   */
  public static void handshake(Socket s, int timeoutMs) throws IOException {
    if (s instanceof TlsSocket tls) {
      tls.setSoTimeout(timeoutMs);
      tls.handshake();
      tls.setSoTimeout(0);
    } else if (s instanceof SSLSocket tls) {
      tls.setSoTimeout(timeoutMs);
      tls.startHandshake();
      tls.setSoTimeout(0);
    }
  }

  /** The TLS session of a socket of {@link #connect} or {@link #listen} (null over plain TCP). */
  public static javax.net.ssl.SSLSession session(Socket s) {
    if (s instanceof TlsSocket tls) {
      return tls.session();
    }
    return s instanceof SSLSocket tls ? tls.getSession() : null;
  }

  /**
   * Connects to {@code hostPort} ("ip:port") and, with TLS, completes the handshake: a server
   * whose certificate the CA did not sign is refused here, before anything is sent. A plain
   * socket has a channel (for zero-copy transfers).
   */
  public Socket connect(String hostPort, int timeoutMs) throws IOException {
    return connect(hostPort, timeoutMs, tcp -> {});
  }

  /**
   * As {@link #connect(String, int)}, handing {@code beforeConnect} the TCP socket before it
   * connects: closing that socket ends a connect or handshake still waiting on a cut link.
   */
  public Socket connect(String hostPort, int timeoutMs, java.util.function.Consumer<Socket> beforeConnect)
      throws IOException {
    String[] hp = hostPort.split(":");
    Socket s = context == null || natives != null ? java.nio.channels.SocketChannel.open().socket() : new Socket();
    try {
      beforeConnect.accept(s);
      s.setTcpNoDelay(true);
      s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), timeoutMs);
      if (context == null) {
        return s;
      }
      if (natives != null) {
        TlsSocket tls = new TlsSocket(s.getChannel(), natives.clientEngine());
        tls.setSoTimeout(timeoutMs);
        tls.handshake();
        tls.setSoTimeout(0);
        return tls;
      }
      SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(s, hp[0], Integer.parseInt(hp[1]), true);
      tls.setEnabledCipherSuites(fastestFirst(tls.getEnabledCipherSuites()));
      tls.setSoTimeout(timeoutMs);
      tls.startHandshake();
      tls.setSoTimeout(0);
      TRANSPORTS.put(tls, s);
      return tls;
    } catch (IOException e) {
      s.close();
      throw new IOException("connecting to " + hostPort + " over " + (context == null ? "TCP" : "mutual TLS") + ": "
          + e.getMessage(), e);
    }
  }
}
