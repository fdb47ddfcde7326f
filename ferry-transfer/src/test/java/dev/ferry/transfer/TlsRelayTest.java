package dev.ferry.transfer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two relays carry a plain protocol (a stand-in for CRIU's page server: requests, then a reply
 * once the client has half-closed) across "hosts" over mutual TLS: every byte arrives as sent
 * in both directions, an orderly end is passed on as one, and a peer of another CA never reaches
 * the service.
 */
class TlsRelayTest {
  @TempDir Path tmp;

  private PeerTls identity(String ca, String host) throws Exception {
    LabCa.ensure(tmp.resolve(ca), "test " + ca).issue(tmp.resolve(ca + "-" + host), host, "127.0.0.1");
    return PeerTls.load(tmp.resolve(ca + "-" + host));
  }

  /**
   * A service that reads a request ({@code int} length, bytes), answers with it reversed, and
   * closes; then whether its client's end came as an orderly end ("end") or a reset ("reset").
   */
  private static CompletableFuture<byte[]> serveOnce(ServerSocket server, AtomicInteger accepted) {
    return serveOnce(server, accepted, new CompletableFuture<>());
  }

  private static CompletableFuture<byte[]> serveOnce(ServerSocket server, AtomicInteger accepted,
      CompletableFuture<String> clientEnd) {
    return CompletableFuture.supplyAsync(() -> {
      try (server; Socket s = server.accept()) {
        accepted.incrementAndGet();
        java.io.DataInputStream in = new java.io.DataInputStream(s.getInputStream());
        byte[] got = in.readNBytes(in.readInt());
        if (got.length == 0) { // asked to wait for the client's end instead of answering
          try {
            clientEnd.complete(in.read() < 0 ? "end" : "data");
          } catch (java.io.IOException e) {
            clientEnd.complete("reset");
          }
          return got;
        }
        byte[] answer = got.clone();
        for (int i = 0; i < answer.length / 2; i++) {
          byte t = answer[i];
          answer[i] = answer[answer.length - 1 - i];
          answer[answer.length - 1 - i] = t;
        }
        s.getOutputStream().write(answer);
        return got;
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
  }

  @Test
  void bytesCrossBothWaysAndTheServicesEndReachesTheClient() throws Exception {
    PeerTls source = identity("lab", "host-a");
    PeerTls target = identity("lab", "host-b");
    ServerSocket service = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    AtomicInteger accepted = new AtomicInteger();
    CompletableFuture<byte[]> served = serveOnce(service, accepted);
    byte[] request = new byte[3 << 20];
    new Random(7).nextBytes(request);
    try (TlsRelay in = TlsRelay.fromPeers(source, "127.0.0.1", "127.0.0.1:" + service.getLocalPort());
        TlsRelay out = TlsRelay.toPeer(target, in.address())) {
      assertThat(out.address()).startsWith("127.0.0.1:");
      String[] hp = out.address().split(":");
      try (Socket client = new Socket(hp[0], Integer.parseInt(hp[1]))) {
        client.setSoTimeout(20_000);
        OutputStream o = client.getOutputStream();
        new java.io.DataOutputStream(o).writeInt(request.length);
        for (int off = 0; off < request.length; off += 100_000) {
          o.write(request, off, Math.min(100_000, request.length - off));
        }
        byte[] answer = client.getInputStream().readAllBytes(); // to the end the service's close passes on
        assertThat(served.get(20, TimeUnit.SECONDS)).isEqualTo(request);
        byte[] expected = request.clone();
        for (int i = 0; i < expected.length / 2; i++) {
          byte t = expected[i];
          expected[i] = expected[expected.length - 1 - i];
          expected[expected.length - 1 - i] = t;
        }
        assertThat(Arrays.equals(answer, expected)).as("the service's answer, byte for byte").isTrue();
      }
    }
    assertThat(accepted.get()).isEqualTo(1);
  }

  /**
   * The client side ends (its relay closed, as an aborted restore does, or the client just
   * closes): the service sees a reset, never an orderly end, which CRIU's page server would take
   * for "all pages sent" and kill the tree the source still needs.
   */
  @Test
  void thePeersEndReachesTheServiceAsAReset() throws Exception {
    PeerTls source = identity("lab", "host-a");
    PeerTls target = identity("lab", "host-b");
    for (boolean closeRelay : new boolean[] {false, true}) {
      ServerSocket service = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
      CompletableFuture<String> end = new CompletableFuture<>();
      serveOnce(service, new AtomicInteger(), end);
      try (TlsRelay in = TlsRelay.fromPeers(source, "127.0.0.1", "127.0.0.1:" + service.getLocalPort())) {
        TlsRelay out = TlsRelay.toPeer(target, in.address());
        String[] hp = out.address().split(":");
        Socket client = new Socket(hp[0], Integer.parseInt(hp[1]));
        new java.io.DataOutputStream(client.getOutputStream()).writeInt(0);
        client.getOutputStream().flush();
        Thread.sleep(300); // the request reached the service
        if (closeRelay) {
          out.close();
        } else {
          client.close(); // an orderly end on the client's side
        }
        assertThat(end.get(10, TimeUnit.SECONDS)).as(closeRelay ? "relay closed" : "client closed").isEqualTo("reset");
        out.close();
        client.close();
      }
    }
  }

  @Test
  void aPeerOfAnotherCaNeverReachesTheService() throws Exception {
    PeerTls source = identity("lab", "host-a");
    PeerTls stranger = identity("other", "host-b");
    ServerSocket service = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    AtomicInteger accepted = new AtomicInteger();
    service.setSoTimeout(3000);
    CompletableFuture<byte[]> served = serveOnce(service, accepted);
    try (TlsRelay in = TlsRelay.fromPeers(source, "127.0.0.1", "127.0.0.1:" + service.getLocalPort())) {
      assertThatThrownBy(() -> {
        try (Socket s = stranger.connect(in.address(), 5000)) {
          s.getOutputStream().write(new byte[] {0x23, 0x10, 0, 0}); // what a page client's close looks like
          s.getOutputStream().flush();
          InputStream i = s.getInputStream();
          s.setSoTimeout(5000);
          i.read();
        }
      }).isInstanceOf(java.io.IOException.class);
      // plain TCP to the TLS port: refused in the handshake as well
      String[] hp = in.address().split(":");
      try (Socket plain = new Socket(hp[0], Integer.parseInt(hp[1]))) {
        plain.setSoTimeout(5000);
        plain.getOutputStream().write(new byte[32]);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try {
          plain.getInputStream().transferTo(got);
        } catch (java.io.IOException e) {
          // reset: refused
        }
      }
      assertThatThrownBy(() -> served.get(10, TimeUnit.SECONDS)).hasRootCauseInstanceOf(java.net.SocketTimeoutException.class);
    }
    assertThat(accepted.get()).as("connections the service saw").isZero();
  }

  @Test
  void warmUpRoundTripsThroughAPairOfRelays() throws Exception {
    TlsRelay.warmUp(identity("lab", "host-a"), 100_000, 2); // throws if anything came back other than sent
  }

  @Test
  void needsATlsIdentity() {
    assertThatThrownBy(() -> TlsRelay.fromPeers(PeerTls.PLAIN, "127.0.0.1", "127.0.0.1:1"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("TLS identity");
  }

  /**
   * A relay under caps holds what the service sends (post-copy's pages) to the lowest of them,
   * over TLS and over plain TCP (where it relays only for the cap), and every byte still
   * arrives as sent.
   */
  @Test
  void whatTheServiceSendsIsHeldToTheCaps() throws Exception {
    PeerTls source = identity("lab", "host-a");
    PeerTls target = identity("lab", "host-b");
    byte[] pages = new byte[24 << 20]; // ~0.5 s at the 50 MB/s cap
    new Random(11).nextBytes(pages);
    for (boolean secure : new boolean[] {true, false}) {
      ServerSocket service = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
      CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
        try (service; Socket s = service.accept()) {
          s.getInputStream().read(); // a request, then the pages
          s.getOutputStream().write(pages);
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      RateLimiter host = RateLimiter.publish(tmp.resolve("host-" + secure), 50_000_000);
      RateLimiter migration = new RateLimiter(200_000_000);
      try (TlsRelay in = TlsRelay.fromPeers(secure ? source : PeerTls.PLAIN, "127.0.0.1",
              "127.0.0.1:" + service.getLocalPort(), Arrays.asList(migration, null, host));
          TlsRelay out = secure ? TlsRelay.toPeer(target, in.address()) : null) {
        String[] hp = (secure ? out : in).address().split(":");
        try (Socket client = new Socket(hp[0], Integer.parseInt(hp[1]))) {
          client.setSoTimeout(20_000);
          client.getOutputStream().write(1);
          long start = System.nanoTime();
          byte[] got = client.getInputStream().readNBytes(pages.length);
          double mbps = pages.length / ((System.nanoTime() - start) / 1e9) / 1e6;
          assertThat(Arrays.equals(got, pages)).as("pages relayed byte for byte (TLS %s)", secure).isTrue();
          assertThat(mbps).as("MB/s through a relay under a 50 MB/s cap (TLS %s)", secure).isBetween(42.5, 55.0);
        }
        served.get(20, TimeUnit.SECONDS);
      }
    }
  }
}
