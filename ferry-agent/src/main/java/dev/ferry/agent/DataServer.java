package dev.ferry.agent;

import dev.ferry.transfer.ImageReceiver;
import dev.ferry.transfer.PeerTls;
import dev.ferry.transfer.TransferProgress;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/** Accepts checkpoint image streams from source agents on the lab network. */
final class DataServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(DataServer.class);
  private final ServerSocket server;
  private final TargetRole target;
  private final Thread acceptor;

  /** @param server bound already (plain or mutual TLS: see {@link dev.ferry.transfer.PeerTls#listen}) */
  DataServer(ServerSocket server, TargetRole target) {
    this.server = server;
    this.target = target;
    this.acceptor = new Thread(this::acceptLoop, "ferry-data-accept");
    this.acceptor.setDaemon(true);
    this.acceptor.start();
  }

  private void acceptLoop() {
    while (!server.isClosed()) {
      try {
        Socket s = server.accept();
        Thread t = new Thread(() -> handle(s), "ferry-data-" + s.getRemoteSocketAddress());
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        if (!server.isClosed()) {
          LOG.warn("accept failed: {}", e.getMessage());
        }
      }
    }
  }

  private void handle(Socket s) {
    String[] migration = {null};
    try (s) {
      s.setSoTimeout(30_000);
      s.setTcpNoDelay(true); // a sender gone silent (cut link) frees the placeholder in 30 s
      java.io.InputStream in = s.getInputStream();
      byte[] magic = in.readNBytes(IdentityHandover.MAGIC.length());
      if (magic.length == 0) {
        return; // a connection opened ahead that no step needed, closed unused
      }
      if (new String(magic, java.nio.charset.StandardCharsets.US_ASCII).equals(IdentityHandover.MAGIC)) {
        IdentityHandover.serve(new java.io.DataInputStream(in), new java.io.DataOutputStream(s.getOutputStream()), target);
        return;
      }
      // a transfer: its receiver reads its own magic, from what was read here on (and over plain
      // TCP reads the rest from the socket's channel, straight into the buffer files are written from)
      TransferProgress progress = new TransferProgress();
      ImageReceiver receiver =
          new ImageReceiver(
              (id, incremental) -> {
                migration[0] = TargetRole.migrationOf(id);
                MDC.put("migration", migration[0]);
                return target.incoming(id, incremental);
              },
              target.resumable());
      String id =
          receiver.receive(s, magic, () -> PeerTls.abort(s), progress,
              bytes -> injectCrash(migration[0], bytes));
      target.received(id);
      LOG.info("received {} bytes in {} files, all checksums verified", progress.bytes(), progress.files());
    } catch (IOException | RuntimeException e) {
      LOG.warn("transfer not completed (refused, or its connection broke: then it may resume): {}", e.getMessage());
    } finally {
      MDC.remove("migration");
    }
  }

  /** Fault injection for tests: the agent dies abruptly half-way through the frozen round's transfer. */
  private void injectCrash(String migrationId, long bytes) {
    if (migrationId != null && bytes > 0 && target.faults(migrationId).contains("target-agent-crash-in-transfer")
        && target.frozenRoundStarted(migrationId)) {
      LOG.error("injected fault: target agent crashing after {} bytes", bytes);
      Runtime.getRuntime().halt(137);
    }
  }


  @Override
  public void close() throws IOException {
    server.close();
  }
}
