package dev.ferry.agent;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.HostInfo;
import dev.ferry.api.Json;
import dev.ferry.api.PodSpec;
import dev.ferry.api.PodStatus;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Talks to one agent's API over its Unix socket. Errors come back as {@link AgentException}
 * carrying the agent's own message.
 */
public final class AgentClient implements AutoCloseable {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(AgentClient.class);
  private final String host;
  private final Path socket;
  private final UnixHttp http;

  public AgentClient(String host, Path socket) {
    this.host = host;
    this.socket = socket;
    this.http = new UnixHttp(host, socket);
  }

  public String host() {
    return host;
  }

  /** An agent error: its HTTP status (0 when unreachable) and message. */
  public static final class AgentException extends RuntimeException {
    private final int status;

    public AgentException(String host, int status, String message) {
      super("agent " + host + ": " + message);
      this.status = status;
    }

    public int status() {
      return status;
    }

    public boolean unreachable() {
      return status == 0;
    }
  }

  public HostInfo info() {
    return Json.MAPPER.convertValue(call("GET", "/v1/info", null, 10), HostInfo.class);
  }

  public PodStatus runPod(PodSpec spec) {
    return Json.MAPPER.convertValue(call("POST", "/v1/pods", spec, 300), PodStatus.class);
  }

  public List<PodStatus> pods() {
    return Arrays.asList(Json.MAPPER.convertValue(call("GET", "/v1/pods", null, 30), PodStatus[].class));
  }

  public PodStatus pod(String name) {
    return Json.MAPPER.convertValue(call("GET", "/v1/pods/" + name, null, 30), PodStatus.class);
  }

  /** What keeps pod {@code name} from being migrated (devices, file locks), in words; empty if nothing. */
  public List<String> migratability(String name) {
    List<String> out = new java.util.ArrayList<>();
    call("GET", "/v1/pods/" + name + "/migratability", null, 30).path("problems").forEach(p -> out.add(p.asText()));
    return out;
  }

  public void deletePod(String name) {
    call("DELETE", "/v1/pods/" + name, null, 120);
  }

  public String logs(String name, String container) {
    return text("GET", "/v1/pods/" + name + "/logs" + (container == null ? "" : "?container=" + container), 30);
  }

  public String cpuinfo() {
    return call("GET", "/v1/cpuinfo", null, 30).path("image").asText();
  }

  public JsonNode cpuinfoCheck(String image) {
    return call("POST", "/v1/cpuinfo/check", Map.of("image", image), 30);
  }

  /** One migration step on this agent, e.g. ("source", "checkpoint"). */
  public JsonNode step(String migrationId, String role, String step, Map<String, Object> body) {
    long start = System.nanoTime();
    JsonNode answer = call("POST", "/v1/migrations/" + migrationId + "/" + role + "/" + step, body, 1800);
    LOG.debug("{} {}/{} took {} us", host, role, step, (System.nanoTime() - start) / 1000);
    return answer;
  }

  public JsonNode progress(String migrationId) {
    return call("GET", "/v1/migrations/" + migrationId + "/progress", null, 5);
  }

  private JsonNode call(String method, String path, Object body, int timeoutSeconds) {
    return Json.read(text(method, path, body, timeoutSeconds), JsonNode.class);
  }

  private String text(String method, String path, int timeoutSeconds) {
    return text(method, path, null, timeoutSeconds);
  }

  private String text(String method, String path, Object body, int timeoutSeconds) {
    if (!Files.exists(socket)) {
      throw new AgentException(host, 0, "not running (no socket at " + socket + "); is the lab up? try: ferry lab up");
    }
    try {
      UnixHttp.Response resp = http.call(method, path, body == null ? null : Json.write(body), timeoutSeconds * 1000L);
      String text = resp.body();
      if (resp.status() >= 400) {
        String msg = text;
        try {
          msg = Json.read(text, JsonNode.class).path("error").asText(text);
        } catch (IllegalArgumentException ignored) {
          msg = "HTTP " + resp.status() + ": " + plain(text); // not JSON: the server's own error page
        }
        throw new AgentException(host, resp.status(), msg);
      }
      return text;
    } catch (java.io.InterruptedIOException e) {
      Thread.currentThread().interrupt();
      throw new AgentException(host, 0, "interrupted");
    } catch (IOException | java.util.concurrent.TimeoutException e) {
      throw new AgentException(host, 0, "unreachable at " + socket + ": " + why(e));
    }
  }

  /** The title of an HTML error page, or the first line of a text, for a message. */
  static String plain(String text) {
    var title = java.util.regex.Pattern.compile("<title>(.*?)</title>", java.util.regex.Pattern.DOTALL).matcher(text);
    String t = title.find() ? title.group(1) : text.strip().lines().findFirst().orElse("(empty answer)");
    return t.length() > 300 ? t.substring(0, 300) + " ..." : t;
  }

  /**
   * Why a call failed, in words: the HTTP client's own messages for a connection closed under
   * it are its internal object names.
   */
  static String why(Throwable c) {
    String m = c.getMessage();
    if (c instanceof java.io.EOFException || c instanceof java.nio.channels.ClosedChannelException || m == null) {
      return "the connection closed before the agent answered (did it die or restart?)";
    }
    if (c instanceof java.util.concurrent.TimeoutException) {
      return "no answer in time (" + m + ")";
    }
    return m;
  }

  @Override
  public void close() {
    http.close();
  }
}
