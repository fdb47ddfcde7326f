package dev.ferry.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PeerTlsTest {
  @TempDir Path tmp;

  private PeerTls identity(String ca, String host) throws Exception {
    return identity(ca, host, true);
  }

  /** @param boringSsl through BoringSSL (as where it loads), else JSSE (as where it does not) */
  private PeerTls identity(String ca, String host, boolean boringSsl) throws Exception {
    LabCa.ensure(tmp.resolve(ca), "test " + ca).issue(tmp.resolve(ca + "-" + host), host, "127.0.0.1");
    return PeerTls.load(tmp.resolve(ca + "-" + host), boringSsl);
  }

  /** What the server read from its one client, or the server's failure. */
  private CompletableFuture<String> serveOnce(ServerSocket server) {
    return CompletableFuture.supplyAsync(() -> {
      try (server; Socket s = server.accept()) {
        String got = new DataInputStream(s.getInputStream()).readUTF();
        new DataOutputStream(s.getOutputStream()).writeUTF("ok " + got);
        return got;
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
  }

  @Test
  void boringSslIsWhatThisMachineUses() throws Exception {
    assertThat(NativeTls.usable()).as("netty-tcnative's BoringSSL loads on linux-x86_64").isTrue();
    assertThat(PeerTls.load(prepared("lab", "host-a")).toString()).contains("BoringSSL");
  }

  private Path prepared(String ca, String host) throws Exception {
    identity(ca, host);
    return tmp.resolve(ca + "-" + host);
  }

  /** Client engine, server engine: BoringSSL's (true) or JSSE's (false). */
  static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> engines() {
    return java.util.stream.Stream.of(
        org.junit.jupiter.params.provider.Arguments.of(true, true),
        org.junit.jupiter.params.provider.Arguments.of(false, false),
        org.junit.jupiter.params.provider.Arguments.of(true, false),
        org.junit.jupiter.params.provider.Arguments.of(false, true));
  }

  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.MethodSource("engines")
  void peersOfOneCaTalkAndTheKeysAreRootOnly(boolean clientBoring, boolean serverBoring) throws Exception {
    PeerTls a = identity("lab", "host-a", clientBoring);
    PeerTls b = identity("lab", "host-b", serverBoring);
    assertThat(a.secure()).isTrue();
    ServerSocket server = b.listen("127.0.0.1", 0, 1);
    CompletableFuture<String> got = serveOnce(server);
    try (Socket c = a.connect("127.0.0.1:" + server.getLocalPort(), 5000)) {
      assertThat(PeerTls.session(c).getProtocol()).isEqualTo("TLSv1.3");
      assertThat(PeerTls.session(c).getCipherSuite()).isEqualTo(PeerTls.PREFERRED_SUITE);
      new DataOutputStream(c.getOutputStream()).writeUTF("hello");
      assertThat(new DataInputStream(c.getInputStream()).readUTF()).isEqualTo("ok hello");
    }
    assertThat(got.get(5, TimeUnit.SECONDS)).isEqualTo("hello");
    assertThat(Files.getPosixFilePermissions(tmp.resolve("lab-host-a").resolve(PeerTls.KEY)))
        .isEqualTo(PosixFilePermissions.fromString("rw-------"));
    assertThat(Files.getPosixFilePermissions(tmp.resolve("lab").resolve("ca.key")))
        .isEqualTo(PosixFilePermissions.fromString("rw-------"));
  }

  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.MethodSource("engines")
  void aClientOfAnotherCaIsRefusedBeforeTheServerReadsAnything(boolean clientBoring, boolean serverBoring)
      throws Exception {
    PeerTls server = identity("lab", "host-b", serverBoring);
    PeerTls stranger = identity("other", "host-x", clientBoring);
    ServerSocket s = server.listen("127.0.0.1", 0, 1);
    CompletableFuture<String> got = serveOnce(s);
    assertThatThrownBy(() -> {
      try (Socket c = stranger.connect("127.0.0.1:" + s.getLocalPort(), 5000)) {
        new DataOutputStream(c.getOutputStream()).writeUTF("let me in");
        new DataInputStream(c.getInputStream()).readUTF();
      }
    }).isInstanceOf(java.io.IOException.class);
    assertThat(got).failsWithin(5, TimeUnit.SECONDS);
  }

  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.MethodSource("engines")
  void aServerOfAnotherCaIsRefusedByTheClient(boolean clientBoring, boolean serverBoring) throws Exception {
    PeerTls client = identity("lab", "host-a", clientBoring);
    PeerTls impostor = identity("other", "host-b", serverBoring);
    ServerSocket s = impostor.listen("127.0.0.1", 0, 1);
    CompletableFuture<String> got = serveOnce(s);
    assertThatThrownBy(() -> client.connect("127.0.0.1:" + s.getLocalPort(), 5000))
        .hasMessageContaining("mutual TLS");
    assertThat(got).failsWithin(5, TimeUnit.SECONDS);
  }

  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
  void aClientWithoutACertificateIsRefused(boolean serverBoring) throws Exception {
    PeerTls server = identity("lab", "host-b", serverBoring);
    // plain TCP to the TLS port
    ServerSocket s = server.listen("127.0.0.1", 0, 2);
    CompletableFuture<String> got = serveOnce(s);
    try (Socket c = PeerTls.PLAIN.connect("127.0.0.1:" + s.getLocalPort(), 5000)) {
      new DataOutputStream(c.getOutputStream()).writeUTF("let me in");
      c.setSoTimeout(5000);
      assertThatThrownBy(() -> new DataInputStream(c.getInputStream()).readUTF()).isInstanceOf(java.io.IOException.class);
    }
    assertThat(got).failsWithin(5, TimeUnit.SECONDS);
    // TLS 1.3 that trusts the lab's CA but shows no certificate
    ServerSocket s2 = server.listen("127.0.0.1", 0, 2);
    CompletableFuture<String> got2 = serveOnce(s2);
    javax.net.ssl.TrustManagerFactory tmf =
        javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
    java.security.KeyStore trust = java.security.KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    try (var in = java.nio.file.Files.newInputStream(tmp.resolve("lab-host-b").resolve(PeerTls.CA))) {
      trust.setCertificateEntry("ca", java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
    }
    tmf.init(trust);
    javax.net.ssl.SSLContext anonymous = javax.net.ssl.SSLContext.getInstance("TLSv1.3");
    anonymous.init(null, tmf.getTrustManagers(), null);
    assertThatThrownBy(() -> {
      try (Socket c = anonymous.getSocketFactory().createSocket("127.0.0.1", s2.getLocalPort())) {
        c.setSoTimeout(5000);
        new DataOutputStream(c.getOutputStream()).writeUTF("let me in");
        new DataInputStream(c.getInputStream()).readUTF();
      }
    }).isInstanceOf(java.io.IOException.class);
    assertThat(got2).failsWithin(5, TimeUnit.SECONDS);
  }

  @Test
  void plainTcpWhereNoCertificatesExist() throws Exception {
    ServerSocket s = PeerTls.PLAIN.listen("127.0.0.1", 0, 1);
    CompletableFuture<String> got = serveOnce(s);
    try (Socket c = PeerTls.PLAIN.connect("127.0.0.1:" + s.getLocalPort(), 5000)) {
      new DataOutputStream(c.getOutputStream()).writeUTF("hi");
      new DataInputStream(c.getInputStream()).readUTF();
    }
    assertThat(got.get(5, TimeUnit.SECONDS)).isEqualTo("hi");
  }
}
