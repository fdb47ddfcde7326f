package dev.ferry.transfer;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A receiving end on a loopback port, as an agent's data port is: every connection in a
 * receiver of its own, all sharing what was verified (so that a next connection resumes).
 * Over sockets of a {@link PeerTls} ({@link PeerTls#PLAIN}'s have channels: the direct-buffer
 * path; TLS through BoringSSL has its own channel) or plain stream sockets.
 */
final class LoopbackTarget implements AutoCloseable {
  final ServerSocket server;
  final ResumableTransfers resumable = new ResumableTransfers();
  /** Transfer ids received completely. */
  final Set<String> received = ConcurrentHashMap.newKeySet();
  /** The first transfer id received completely. */
  final CompletableFuture<String> done = new CompletableFuture<>();
  /** Why the receivers refused what they got (checksum mismatches). */
  final List<String> refusals = new CopyOnWriteArrayList<>();
  /** What each connection carried, in the order they came. */
  final List<TransferProgress> perConnection = new CopyOnWriteArrayList<>();
  private final boolean channels;
  private final PeerTls dialAs;

  /** @param channels over {@link PeerTls#PLAIN} (socket channels) rather than stream sockets */
  LoopbackTarget(Path dst, boolean channels) throws IOException {
    this(dst, channels ? PeerTls.PLAIN : null, null);
  }

  /** Over {@code tls}'s sockets, dialed as {@code dialAs} (null: stream sockets both). */
  LoopbackTarget(Path dst, PeerTls tls, PeerTls dialAs) throws IOException {
    this.channels = tls != null;
    this.dialAs = dialAs != null ? dialAs : tls;
    server = channels ? tls.listen("127.0.0.1", 0, 16) : new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
    Thread acceptor = new Thread(() -> {
      while (!server.isClosed()) {
        try {
          Socket s = server.accept();
          TransferProgress p = new TransferProgress();
          perConnection.add(p);
          CompletableFuture.runAsync(() -> receive(s, dst, p));
        } catch (IOException e) {
          return;
        }
      }
    }, "loopback-target");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  private void receive(Socket s, Path dst, TransferProgress p) {
    try (s) {
      ImageReceiver rx = new ImageReceiver((id, inc) -> dst, resumable);
      String id = channels ? rx.receive(s, new byte[0], s, p, b -> {})
          : rx.receive(s.getInputStream(), s.getOutputStream(), s, p, b -> {});
      received.add(id);
      done.complete(id);
    } catch (IntegrityException e) {
      refusals.add(e.getMessage());
    } catch (IOException e) {
      // broken: a next connection may resume
    }
  }

  /** A new connection to this target, of the same kind. */
  Socket dial() throws IOException {
    return channels ? dialAs.connect("127.0.0.1:" + server.getLocalPort(), 5000)
        : new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
  }

  @Override
  public void close() throws IOException {
    server.close();
  }
}
