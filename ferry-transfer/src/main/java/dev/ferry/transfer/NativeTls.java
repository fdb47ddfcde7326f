package dev.ferry.transfer;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * BoringSSL's TLS engines (netty-tcnative, its library for linux-x86_64 in the jar) for one host's
 * identity: mutual TLS 1.3 only, the lab's CA the only one trusted, a client certificate required.
 * BoringSSL picks TLS_AES_128_GCM_SHA256 first where the CPU has AES instructions. No host name
 * check, as with JSSE here: the CA is the lab's own and signs its hosts only.
 */
final class NativeTls {
  private static final Logger LOG = LoggerFactory.getLogger(NativeTls.class);
  /** Set to "jsse" to use Java's TLS even where BoringSSL loads. */
  static final String ENGINE_PROPERTY = "ferry.tls.engine";
  private static volatile Boolean usable;

  private final SslContext client;
  private final SslContext server;

  private NativeTls(SslContext client, SslContext server) {
    this.client = client;
    this.server = server;
  }

  /**
   * Whether BoringSSL can be used here (it loaded, and {@value #ENGINE_PROPERTY} does not say
   * "jsse"); says once in the log which TLS this process uses, and why not BoringSSL.
   */
  static boolean usable() {
    Boolean u = usable;
    if (u == null) {
      synchronized (NativeTls.class) {
        if (usable == null) {
          usable = check();
        }
        u = usable;
      }
    }
    return u;
  }

  private static boolean check() {
    if ("jsse".equalsIgnoreCase(System.getProperty(ENGINE_PROPERTY))) {
      LOG.info("TLS through Java's JSSE ({}=jsse)", ENGINE_PROPERTY);
      return false;
    }
    try {
      if (OpenSsl.isAvailable()) {
        LOG.info("TLS through {} (netty-tcnative)", OpenSsl.versionString());
        return true;
      }
      Throwable why = OpenSsl.unavailabilityCause();
      LOG.warn("BoringSSL (netty-tcnative) cannot load here ({}): TLS through Java's JSSE, which costs about twice the"
          + " CPU per byte", why == null ? "no reason given" : why.toString());
    } catch (LinkageError e) {
      LOG.warn("BoringSSL (netty-tcnative) cannot load here ({}): TLS through Java's JSSE, which costs about twice the"
          + " CPU per byte", e.toString());
    }
    return false;
  }

  /** Engines for {@code cert} (issued by {@code ca}) with {@code key}, trusting {@code ca} only. */
  static NativeTls of(PrivateKey key, X509Certificate cert, X509Certificate ca) throws SSLException {
    SslContext client = SslContextBuilder.forClient()
        .sslProvider(SslProvider.OPENSSL)
        .protocols("TLSv1.3")
        .keyManager(key, cert, ca)
        .trustManager(ca)
        .build();
    SslContext server = SslContextBuilder.forServer(key, cert, ca)
        .sslProvider(SslProvider.OPENSSL)
        .protocols("TLSv1.3")
        .trustManager(ca)
        .clientAuth(ClientAuth.REQUIRE)
        .build();
    return new NativeTls(client, server);
  }

  SSLEngine clientEngine() {
    return client.newEngine(ByteBufAllocator.DEFAULT);
  }

  SSLEngine serverEngine() {
    return server.newEngine(ByteBufAllocator.DEFAULT);
  }
}
