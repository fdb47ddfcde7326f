package dev.ferry.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.Callback;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent API's client against the same server the agent runs (Jetty on a Unix socket):
 * answers of each framing, connections kept and renewed, concurrent calls, time-outs, and
 * {@link AgentClient}'s errors for an agent that answers badly or not at all.
 */
class UnixHttpTest {
  @TempDir Path tmp;
  private Server server;
  private final Set<String> connections = ConcurrentHashMap.newKeySet();

  private Path serve(long idleTimeoutMs) throws Exception {
    Path socket = tmp.resolve("agent.sock");
    server = new Server();
    UnixDomainServerConnector uds = new UnixDomainServerConnector(server);
    uds.setUnixDomainPath(socket);
    uds.setIdleTimeout(idleTimeoutMs);
    server.addConnector(uds);
    server.setHandler(new Handler.Abstract() {
      @Override
      public boolean handle(Request request, Response response, Callback callback) throws Exception {
        connections.add(request.getConnectionMetaData().getId());
        String body = Content.Source.asString(request, StandardCharsets.UTF_8);
        String path = Request.getPathInContext(request);
        switch (path.endsWith("/refuse") ? "/refuse" : path) {
          case "/echo" -> {
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            Content.Sink.write(response, true, "{\"method\":\"" + request.getMethod() + "\",\"got\":" + body + "}", callback);
          }
          case "/chunked" -> {
            // written in parts, the length unknown up front: Jetty chunks it
            Content.Sink.write(response, false, "a".repeat(70_000), Callback.from(
                () -> Content.Sink.write(response, false, "b".repeat(10), Callback.from(
                    () -> Content.Sink.write(response, true, "c", callback), callback::failed)), callback::failed));
          }
          case "/slow" -> {
            Thread.sleep(1500);
            Content.Sink.write(response, true, "{}", callback);
          }
          case "/refuse" -> {
            response.setStatus(409);
            Content.Sink.write(response, true, "{\"error\":\"migration m-1: not yours\"}", callback);
          }
          default -> {
            response.setStatus(404);
            Content.Sink.write(response, true, "<html><title>Not Found</title></html>", callback);
          }
        }
        return true;
      }
    });
    server.start();
    return socket;
  }

  @AfterEach
  void stop() throws Exception {
    if (server != null) {
      server.stop();
    }
  }

  @Test
  void answersWithALengthOrInChunksOverOneKeptConnection() throws Exception {
    try (UnixHttp http = new UnixHttp("host-a", serve(60_000))) {
      UnixHttp.Response r = http.call("POST", "/echo", "{\"pod\":\"redis\",\"note\":\"\u00e9\"}", 5000);
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.body()).isEqualTo("{\"method\":\"POST\",\"got\":{\"pod\":\"redis\",\"note\":\"\u00e9\"}}");
      assertThat(http.call("GET", "/echo", null, 5000).body()).isEqualTo("{\"method\":\"GET\",\"got\":}");
      UnixHttp.Response chunked = http.call("GET", "/chunked", null, 5000);
      assertThat(chunked.body()).hasSize(70_011).startsWith("aaa").endsWith("bbbbbbbbbbc");
      assertThat(http.call("POST", "/echo", "{}", 5000).body()).contains("\"got\":{}");
      assertThat(connections).as("one connection served every call").hasSize(1);
    }
  }

  @Test
  void opensANewConnectionWhenTheAgentClosedTheIdleOne() throws Exception {
    try (UnixHttp http = new UnixHttp("host-a", serve(200))) {
      assertThat(http.call("POST", "/echo", "1", 5000).body()).contains("\"got\":1");
      Thread.sleep(600); // the server's idle time-out closes it
      assertThat(http.call("POST", "/echo", "2", 5000).body()).contains("\"got\":2");
      assertThat(connections).hasSize(2);
    }
  }

  @Test
  void callsAtTheSameTimeEachGetTheirOwnAnswer() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(6);
    try (UnixHttp http = new UnixHttp("host-a", serve(60_000))) {
      List<Future<String>> answers = new ArrayList<>();
      for (int i = 0; i < 120; i++) {
        int n = i;
        answers.add(pool.submit(() -> http.call("POST", "/echo", String.valueOf(n), 5000).body()));
      }
      for (int i = 0; i < answers.size(); i++) {
        assertThat(answers.get(i).get()).isEqualTo("{\"method\":\"POST\",\"got\":" + i + "}");
      }
      assertThat(connections.size()).as("connections are reused, at most one per caller at a time").isBetween(1, 6);
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aCallThatOverrunsItsTimeOutFailsAndTheNextOneWorks() throws Exception {
    try (UnixHttp http = new UnixHttp("host-a", serve(60_000))) {
      long start = System.nanoTime();
      assertThatThrownBy(() -> http.call("POST", "/slow", "{}", 300)).isInstanceOf(TimeoutException.class);
      assertThat((System.nanoTime() - start) / 1_000_000).isBetween(250L, 1400L);
      assertThat(http.call("POST", "/echo", "3", 5000).body()).contains("\"got\":3");
    }
  }

  @Test
  void agentErrorsCarryTheAgentsMessage() throws Exception {
    Path socket = serve(60_000);
    try (AgentClient agent = new AgentClient("host-b", socket)) {
      assertThatThrownBy(() -> agent.step("m-1", "target", "x", java.util.Map.of()))
          .isInstanceOf(AgentClient.AgentException.class)
          .hasMessage("agent host-b: HTTP 404: Not Found")
          .satisfies(e -> assertThat(((AgentClient.AgentException) e).status()).isEqualTo(404));
      assertThatThrownBy(() -> agent.step("m-1", "target", "refuse", java.util.Map.of("pod", "redis")))
          .hasMessage("agent host-b: migration m-1: not yours")
          .satisfies(e -> assertThat(((AgentClient.AgentException) e).status()).isEqualTo(409));
    }
  }

  @Test
  void anAgentThatIsGoneIsUnreachableWithTheReason() throws Exception {
    Path socket = serve(60_000);
    server.stop();
    Files.deleteIfExists(socket);
    try (AgentClient agent = new AgentClient("host-b", socket)) {
      assertThatThrownBy(agent::info).hasMessageContaining("agent host-b: not running (no socket at " + socket);
    }
    Files.createFile(socket); // a socket file left by an agent that died
    try (AgentClient agent = new AgentClient("host-b", socket)) {
      assertThatThrownBy(agent::info)
          .isInstanceOf(AgentClient.AgentException.class)
          .hasMessageStartingWith("agent host-b: unreachable at " + socket + ": ")
          .satisfies(e -> assertThat(((AgentClient.AgentException) e).unreachable()).isTrue());
    }
  }
}
