package dev.ferry.agent;

import dev.ferry.api.Json;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.Fields;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * Serves {@link AgentApi} over HTTP on a Unix socket (for the local coordinator and CLI,
 * whatever network namespace they are in) and, if an API port is given, on TCP. The lab
 * gives none: an unauthenticated control API must not be reachable from the network (mutual
 * TLS between hosts is issue #5).
 */
final class AgentServer implements AutoCloseable {
  /** Checkpoints and transfers of big pods take minutes: no short idle time-outs. */
  private static final long IDLE_TIMEOUT_MS = 30 * 60_000L;
  private final Server server;
  private final ApiHandler handler;

  AgentServer(AgentConfig config, AgentApi api) throws Exception {
    server = new Server(threadPool());
    Files.createDirectories(config.socket().getParent());
    Files.deleteIfExists(config.socket());
    UnixDomainServerConnector uds = new UnixDomainServerConnector(server);
    uds.setUnixDomainPath(config.socket());
    uds.setIdleTimeout(IDLE_TIMEOUT_MS);
    server.addConnector(uds);
    if (config.listenIp() != null && config.apiPort() > 0) {
      ServerConnector tcp = new ServerConnector(server);
      tcp.setHost(config.listenIp());
      tcp.setPort(config.apiPort());
      tcp.setIdleTimeout(IDLE_TIMEOUT_MS);
      server.addConnector(tcp);
    }
    handler = new ApiHandler(api);
    server.setHandler(handler);
    server.start();
    Files.setPosixFilePermissions(config.socket(), java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
  }

  private static QueuedThreadPool threadPool() {
    QueuedThreadPool pool = new QueuedThreadPool(64, 4);
    pool.setName("ferry-api");
    return pool;
  }

  @Override
  public void close() throws Exception {
    server.stop();
    handler.calls.shutdown();
  }

  private static final class ApiHandler extends Handler.Abstract.NonBlocking {
    private final AgentApi api;

    ApiHandler(AgentApi api) {
      this.api = api;
    }

    /**
     * The API's work blocks (runc, CRIU), so it runs off the selector thread, on threads kept
     * for the next call: starting one per call cost ~1 ms of each call, several of them inside
     * the frozen window. Unbounded, as the thread per call was: a long checkpoint must not hold
     * up a short call.
     */
    private final java.util.concurrent.ExecutorService calls = java.util.concurrent.Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "ferry-api-call");
      t.setDaemon(true);
      return t;
    });

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
      calls.execute(() -> serve(request, response, callback));
      return true;
    }

    private void serve(Request request, Response response, Callback callback) {
      try {
        String body = Content.Source.asString(request, StandardCharsets.UTF_8);
        Map<String, String> query = new HashMap<>();
        Fields fields = Request.extractQueryParameters(request);
        fields.forEach(f -> query.put(f.getName(), f.getValue()));
        AgentApi.Answer a = api.handle(request.getMethod(), Request.getPathInContext(request), query, body);
        String text = a.body() instanceof String s ? s : Json.write(a.body());
        response.setStatus(a.status());
        response.getHeaders().put(HttpHeader.CONTENT_TYPE,
            a.body() instanceof String ? "text/plain; charset=utf-8" : "application/json");
        Content.Sink.write(response, true, text, callback);
      } catch (Throwable t) {
        callback.failed(t);
      }
    }
  }

}
