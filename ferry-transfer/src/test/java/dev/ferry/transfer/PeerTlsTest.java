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
    LabCa.ensure(tmp.resolve(ca), "test " + ca).issue(tmp.resolve(ca + "-" + host), host, "127.0.0.1");
    return PeerTls.load(tmp.resolve(ca + "-" + host));
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
  void peersOfOneCaTalkAndTheKeysAreRootOnly() throws Exception {
    PeerTls a = identity("lab", "host-a");
    PeerTls b = identity("lab", "host-b");
    assertThat(a.secure()).isTrue();
    ServerSocket server = b.listen("127.0.0.1", 0, 1);
    CompletableFuture<String> got = serveOnce(server);
    try (Socket c = a.connect("127.0.0.1:" + server.getLocalPort(), 5000)) {
      assertThat(((javax.net.ssl.SSLSocket) c).getSession().getCipherSuite()).isEqualTo(PeerTls.PREFERRED_SUITE);
      new DataOutputStream(c.getOutputStream()).writeUTF("hello");
      assertThat(new DataInputStream(c.getInputStream()).readUTF()).isEqualTo("ok hello");
    }
    assertThat(got.get(5, TimeUnit.SECONDS)).isEqualTo("hello");
    assertThat(Files.getPosixFilePermissions(tmp.resolve("lab-host-a").resolve(PeerTls.KEY)))
        .isEqualTo(PosixFilePermissions.fromString("rw-------"));
    assertThat(Files.getPosixFilePermissions(tmp.resolve("lab").resolve("ca.key")))
        .isEqualTo(PosixFilePermissions.fromString("rw-------"));
  }

  @Test
  void aClientOfAnotherCaIsRefusedBeforeTheServerReadsAnything() throws Exception {
    PeerTls server = identity("lab", "host-b");
    PeerTls stranger = identity("other", "host-x");
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

  @Test
  void aServerOfAnotherCaIsRefusedByTheClient() throws Exception {
    PeerTls client = identity("lab", "host-a");
    PeerTls impostor = identity("other", "host-b");
    ServerSocket s = impostor.listen("127.0.0.1", 0, 1);
    CompletableFuture<String> got = serveOnce(s);
    assertThatThrownBy(() -> client.connect("127.0.0.1:" + s.getLocalPort(), 5000))
        .hasMessageContaining("mutual TLS");
    assertThat(got).failsWithin(5, TimeUnit.SECONDS);
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
