package dev.ferry.agent;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.ProcessBuilder.Redirect;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The agent's side of its host's {@link PageDaemon}: starts it if none runs, and talks to it. */
final class PageDaemonClient {
  private static final Logger LOG = LoggerFactory.getLogger(PageDaemonClient.class);
  private final Path stateDir;
  private final Path socket;

  PageDaemonClient(Path stateDir) {
    this.stateDir = stateDir;
    this.socket = stateDir.resolve(PageDaemon.SOCKET);
  }

  /** Starts the host's page daemon unless one answers already (it outlives agents). */
  void ensureRunning() throws IOException, InterruptedException {
    try {
      JsonNode r = call(Map.of("op", "ping"));
      LOG.info("page daemon {} already runs, with {} page store(s)", r.path("pid").asLong(), r.path("stores").asInt());
      return;
    } catch (IOException e) {
      Files.deleteIfExists(socket); // left by a daemon that died
    }
    // its temporary files (lz4-java's native library) go with the host's state, as the agent's
    java.nio.file.Path tmp = Files.createDirectories(stateDir.resolve("tmp"));
    List<String> cmd = dev.ferry.runtime.JavaCommand.of("512m", tmp, PageDaemon.class.getName(),
        List.of(stateDir.toString()));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(Redirect.appendTo(stateDir.resolve("page-daemon.log").toFile())).start();
    long deadline = System.currentTimeMillis() + 60_000;
    while (!Files.exists(socket)) {
      if (!p.isAlive()) {
        throw new IOException("the page daemon exited at start (exit " + p.exitValue() + "); see "
            + stateDir.resolve("page-daemon.log"));
      }
      if (System.currentTimeMillis() > deadline) {
        p.destroyForcibly();
        throw new IOException("the page daemon did not start within 60 s; see " + stateDir.resolve("page-daemon.log"));
      }
      Thread.sleep(50);
    }
    LOG.info("page daemon {} started", p.pid());
  }

  /** Opens (idempotent) the store of a migration's arriving memory; returns where the pump connects. */
  String open(String migrationId, Path memDir, Path arrivedFile, String listenIp, int stallMs, int reconnectMs)
      throws IOException {
    Map<String, Object> req = new HashMap<>();
    req.put("op", "open");
    req.put("migration", migrationId);
    req.put("memDir", memDir.toString());
    req.put("arrivedFile", arrivedFile.toString());
    req.put("listenIp", listenIp);
    req.put("stallMs", stallMs);
    req.put("reconnectMs", reconnectMs);
    return call(req).path("pumpAddress").asText();
  }

  /** Starts (idempotent) the page server CRIU's lazy-pages daemon reads the store through. */
  String serve(String migrationId, long waitMs) throws IOException {
    return call(Map.of("op", "serve", "migration", migrationId, "waitMs", waitMs)).path("address").asText();
  }

  /** Drops a migration's store (idempotent); with a {@code failure}, whoever waits on it gets that. */
  void close(String migrationId, String failure) {
    Map<String, Object> req = new HashMap<>();
    req.put("op", "close");
    req.put("migration", migrationId);
    req.put("failure", failure);
    try {
      call(req);
    } catch (IOException e) {
      LOG.warn("[{}] page store not closed: {}", migrationId, e.getMessage());
    }
  }

  /**
   * Relays mutual TLS connections from other agents, arriving on {@code listenIp}, to {@code
   * service} on this host (CRIU's page server); returns where they connect. The relay is the
   * daemon's, so it outlives this agent as the dump it serves does. What the service sends is
   * held to {@code bandwidth} (bytes per second, 0 for none) and to the host's cap. Over plain
   * TCP (no TLS identity) it relays plain connections, only to hold them to those caps.
   */
  String relayFromPeers(String migrationId, String listenIp, String service, long bandwidth) throws IOException {
    return call(Map.of("op", "relay-in", "migration", migrationId, "listenIp", listenIp, "service", service,
        "bandwidth", bandwidth)).path("address").asText();
  }

  /** Relays connections to a loopback address (returned) over mutual TLS to {@code peer}, a peer's relay. */
  String relayToPeer(String migrationId, String peer) throws IOException {
    return call(Map.of("op", "relay-out", "migration", migrationId, "peer", peer)).path("address").asText();
  }

  /** Ends a migration's relays (idempotent). */
  void unrelay(String migrationId) {
    try {
      call(Map.of("op", "unrelay", "migration", migrationId));
    } catch (IOException e) {
      LOG.warn("[{}] relays not ended: {}", migrationId, e.getMessage());
    }
  }

  private JsonNode call(Map<String, Object> request) throws IOException {
    try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      c.connect(UnixDomainSocketAddress.of(socket));
      Channels.newOutputStream(c).write((PageDaemon.line(request) + "\n").getBytes(StandardCharsets.UTF_8));
      String line = new BufferedReader(new InputStreamReader(Channels.newInputStream(c), StandardCharsets.UTF_8)).readLine();
      if (line == null) {
        throw new IOException("the page daemon closed the connection without an answer");
      }
      JsonNode r = Json.read(line, JsonNode.class);
      if (r.has("error")) {
        throw new IOException("page daemon: " + r.path("error").asText());
      }
      return r;
    }
  }
}
