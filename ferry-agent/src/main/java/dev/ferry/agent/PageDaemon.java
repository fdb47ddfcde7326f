package dev.ferry.agent;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import dev.ferry.transfer.PeerTls;
import dev.ferry.transfer.RateLimiter;
import dev.ferry.transfer.TlsRelay;
import dev.ferry.transfer.memory.CriuPageServer;
import dev.ferry.transfer.memory.PagePathWarmup;
import dev.ferry.transfer.memory.PumpReceiver;
import dev.ferry.transfer.memory.TargetPageStore;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A process of its own, one per host, that holds the target's copy of frozen pods' memory while
 * it arrives (the page pump's {@link PumpReceiver}) and serves it to CRIU's lazy-pages daemons
 * ({@link CriuPageServer}). It is not the agent so that it outlives the agent: a restored pod
 * whose memory is still filling in from here would lose it with a killed agent, as CRIU's own
 * page daemons would not. A restarted agent finds it by its socket and goes on using it.
 *
 * <p>Requests, one per connection on a Unix socket in the agent's state directory, are a line of
 * JSON answered by a line of JSON ({@link PageDaemonClient}): {@code open} (a store for a
 * migration; returns where the pump connects), {@code serve} (starts the page server for CRIU;
 * returns its address), {@code close} (drops a migration's store and relays, failing whoever
 * waits on it if a reason is given), {@code relay-in} and {@code relay-out} (post-copy over TLS:
 * a {@link TlsRelay} between CRIU's page server on the source and its page client on the target,
 * which must outlive an agent as they do), {@code unrelay}, {@code ping}. Where the host has its
 * TLS identity, the pump's connections and the relays speak mutual TLS. The process ends when
 * the state directory is removed.
 */
public final class PageDaemon {
  private static final Logger LOG = LoggerFactory.getLogger(PageDaemon.class);
  static final String SOCKET = "page-daemon.sock";
  /** The host's bandwidth cap, which the agent publishes in its state directory ({@link RateLimiter#publish}). */
  static final String HOST_CAP_FILE = "host-bandwidth.cap";
  private Path stateDir;

  /** What one migration has here. */
  private record Store(TargetPageStore store, PumpReceiver receiver, CriuPageServer[] server) {
    void close() {
      try {
        receiver.close();
        if (server[0] != null) {
          server[0].close();
        }
        store.close();
      } catch (IOException e) {
        LOG.warn("closing a page store: {}", e.getMessage());
      }
    }
  }

  private final Map<String, Store> stores = new ConcurrentHashMap<>();
  /** Each migration's TLS relays (post-copy's CRIU page server across hosts). */
  private final Map<String, java.util.List<TlsRelay>> relays = new ConcurrentHashMap<>();
  /** This host's identity, as its agent's: the pump and relays speak mutual TLS with it, where it exists. */
  private PeerTls tls = PeerTls.PLAIN;
  private static final com.fasterxml.jackson.databind.ObjectWriter ONE_LINE =
      Json.MAPPER.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT);

  /** A request or answer as the protocol carries it: JSON on one line. */
  static String line(Object value) {
    try {
      return ONE_LINE.writeValueAsString(value);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(e);
    }
  }

  private PageDaemon() {}

  /** {@code PageDaemon STATE_DIR}: serves on STATE_DIR/page-daemon.sock until STATE_DIR is gone. */
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: PageDaemon STATE_DIR (started by the agent; not meant to be run by hand)");
      System.exit(2);
    }
    Path stateDir = Path.of(args[0]);
    new PageDaemon().serve(stateDir);
  }

  private void serve(Path stateDir) throws Exception {
    this.stateDir = stateDir;
    Path tlsDir = stateDir.resolve("tls");
    if (Files.exists(tlsDir.resolve(PeerTls.KEY))) {
      tls = PeerTls.load(tlsDir);
    }
    Path socket = stateDir.resolve(SOCKET);
    Path tmp = stateDir.resolve(SOCKET + ".new");
    Files.deleteIfExists(tmp);
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    server.bind(UnixDomainSocketAddress.of(tmp));
    Files.move(tmp, socket, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    LOG.info("page daemon {} ready on {}; pages travel over {}", ProcessHandle.current().pid(), socket, tls);
    // compiles the page path before the first migration needs it, without holding up the agent's start
    PeerTls identity = tls;
    Thread warm = new Thread(() -> {
      warmUp(stateDir);
      if (identity.secure()) {
        try {
          TlsRelay.warmUp(identity, 256 * 1024, 20);
        } catch (IOException e) {
          LOG.warn("relay warm-up failed (the first post-copy over TLS is slower): {}", e.getMessage());
        }
      }
    }, "ferry-page-daemon-warmup");
    warm.setDaemon(true);
    warm.start();
    Thread watch = new Thread(() -> exitWhenGone(stateDir, socket), "ferry-page-daemon-watch");
    watch.setDaemon(true);
    watch.start();
    ExecutorService pool = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "ferry-page-daemon-request");
      t.setDaemon(true);
      return t;
    });
    while (true) {
      SocketChannel c = server.accept();
      pool.execute(() -> handle(c));
    }
  }

  private static void warmUp(Path stateDir) {
    try {
      Path dir = Files.createTempDirectory(stateDir, "page-daemon-warmup");
      try {
        for (int round = 0; round < 12 && Files.isDirectory(stateDir); round++) { // not once its lab is going
          // createDirectory, not createDirectories: never re-creates a state directory being removed
          PagePathWarmup.exercise(Files.createDirectory(dir.resolve("pages-" + round)), 600);
        }
      } finally {
        dev.ferry.runtime.Files2.deleteTree(dir);
      }
    } catch (Exception e) {
      LOG.warn("page path warm-up failed (the first migration is slower): {}", e.getMessage());
    }
  }

  /** The lab (or the agent's state) was removed: nothing here can be needed any more. */
  private void exitWhenGone(Path stateDir, Path socket) {
    while (true) {
      try {
        Thread.sleep(2000);
      } catch (InterruptedException e) {
        return;
      }
      if (!Files.isDirectory(stateDir) || !Files.exists(socket)) {
        LOG.info("{} is gone: page daemon exits", Files.isDirectory(stateDir) ? socket : stateDir);
        stores.values().forEach(Store::close);
        System.exit(0);
      }
    }
  }

  private void handle(SocketChannel c) {
    try (c) {
      BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(c), StandardCharsets.UTF_8));
      String line = in.readLine();
      Map<String, Object> reply;
      try {
        reply = answer(Json.read(line, JsonNode.class));
      } catch (Exception e) {
        reply = Map.of("error", String.valueOf(e.getMessage()));
      }
      OutputStream out = Channels.newOutputStream(c);
      out.write((line(reply) + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    } catch (IOException e) {
      LOG.warn("page daemon request failed: {}", e.getMessage());
    }
  }

  private Map<String, Object> answer(JsonNode req) throws IOException {
    String op = req.path("op").asText();
    String id = req.path("migration").asText();
    switch (op) {
      case "ping":
        return Map.of("pid", ProcessHandle.current().pid(), "stores", stores.size());
      case "open": {
        Store s = stores.get(id);
        if (s == null) {
          TargetPageStore store = TargetPageStore.open(Path.of(req.path("memDir").asText()),
              Path.of(req.path("arrivedFile").asText()));
          s = new Store(store, new PumpReceiver(req.path("listenIp").asText(), store, req.path("stallMs").asInt(),
              req.path("reconnectMs").asInt(), tls), new CriuPageServer[1]);
          stores.put(id, s);
          LOG.info("[{}] page store open; the pump connects to {}", id, s.receiver().address());
        }
        return Map.of("pumpAddress", s.receiver().address());
      }
      case "serve": {
        Store s = require(id);
        synchronized (s) {
          if (s.server()[0] == null) {
            s.server()[0] = new CriuPageServer(s.store(), req.path("waitMs").asLong());
          }
        }
        return Map.of("address", s.server()[0].address());
      }
      case "relay-in": {
        // what CRIU's page server sends is held to the migration's cap and the host's, as the agent's transfers are
        long bandwidth = req.path("bandwidth").asLong(0);
        java.util.List<RateLimiter> caps = java.util.Arrays.asList(bandwidth > 0 ? new RateLimiter(bandwidth) : null,
            RateLimiter.shared(stateDir.resolve(HOST_CAP_FILE)));
        TlsRelay r = TlsRelay.fromPeers(tls, req.path("listenIp").asText(), req.path("service").asText(), caps);
        relays.computeIfAbsent(id, k -> new java.util.concurrent.CopyOnWriteArrayList<>()).add(r);
        long capped = caps.stream().filter(java.util.Objects::nonNull).mapToLong(RateLimiter::bytesPerSecond).min()
            .orElse(0);
        LOG.info("[{}] relaying {} connections on {} to {}{}", id, tls.secure() ? "TLS" : "plain", r.address(),
            req.path("service").asText(), capped > 0 ? ", capped at " + capped / 1_000_000 + " MB/s" : "");
        return Map.of("address", r.address());
      }
      case "relay-out": {
        TlsRelay r = TlsRelay.toPeer(tls, req.path("peer").asText());
        relays.computeIfAbsent(id, k -> new java.util.concurrent.CopyOnWriteArrayList<>()).add(r);
        LOG.info("[{}] relaying connections on {} over TLS to {}", id, r.address(), req.path("peer").asText());
        return Map.of("address", r.address());
      }
      case "unrelay": {
        java.util.List<TlsRelay> gone = relays.remove(id);
        if (gone != null) {
          gone.forEach(TlsRelay::close);
          LOG.info("[{}] {} relay(s) ended", id, gone.size());
        }
        return Map.of("ended", gone == null ? 0 : gone.size());
      }
      case "close": {
        java.util.List<TlsRelay> gone = relays.remove(id); // a store's migration is over: so are its relays
        if (gone != null) {
          gone.forEach(TlsRelay::close);
        }
        Store s = stores.remove(id);
        if (s != null) {
          if (req.hasNonNull("failure")) {
            s.store().fail(req.path("failure").asText());
          } else {
            awaitPumpEnd(id, s);
          }
          s.close();
          LOG.info("[{}] page store closed", id);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("closed", s != null);
        return r;
      }
      default:
        throw new IllegalArgumentException("unknown request '" + op + "'");
    }
  }

  /** How long a normal close waits for the pump to end its pass (1 GiB takes ~1-2 s). */
  private static final long PUMP_END_WAIT_MS = 20_000;

  /**
   * A normal close comes once CRIU's daemon has every page, which it may have taken through the
   * pump's wants alone while the pump was still held (hybrid, until the commit; a recovery
   * releases it late): the pump's own pass then starts against a closed port, takes it for a
   * cut link and dials it again for 100 s. So the store stays open until the pump ended its pass
   * (or did not within {@link #PUMP_END_WAIT_MS}).
   */
  private static void awaitPumpEnd(String id, Store s) {
    try {
      s.receiver().done().get(PUMP_END_WAIT_MS, java.util.concurrent.TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      LOG.warn("[{}] the page pump did not end its pass within {} s; closing its store anyway", id,
          PUMP_END_WAIT_MS / 1000);
    } catch (java.util.concurrent.ExecutionException e) {
      // the pump failed: nothing to wait for
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private Store require(String id) {
    Store s = stores.get(id);
    if (s == null) {
      throw new IllegalStateException("migration " + id + " has no page store here; open it first");
    }
    return s;
  }
}
