package dev.ferry.agent;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.HostInfo;
import dev.ferry.api.Json;
import dev.ferry.api.PodSpec;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.HostCapabilities;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * The agent's HTTP/JSON API, transport-free: one method per route. See README "Agent API".
 *
 * <pre>
 * GET    /v1/info                                 host, capabilities, capacity
 * GET    /v1/pods                                 list pods
 * POST   /v1/pods                  PodSpec        run a pod
 * GET    /v1/pods/NAME                            pod status
 * GET    /v1/pods/NAME/logs?container=C           container log (text)
 * DELETE /v1/pods/NAME                            delete a pod
 * GET    /v1/cpuinfo                              CRIU cpuinfo image of this host (base64)
 * POST   /v1/cpuinfo/check         {image}        can images from that CPU restore here?
 * POST   /v1/migrations/ID/source/{presync|memround|checkpoint|pump|release-pump|send|cancel|release|resume|finish}
 *                                                          {pod, target, faults}
 * GET    /v1/migrations/ID/progress               bytes sent so far
 * POST   /v1/migrations/ID/target/{prepare|identity|restore|commit|pages|abort}  {pod, spec, faults}
 * </pre>
 */
public final class AgentApi {
  private static final Logger LOG = LoggerFactory.getLogger(AgentApi.class);
  private static final Pattern MIGRATION = Pattern.compile("/v1/migrations/([^/]+)/(source|target)/([a-z][a-z-]*)");
  private static final Pattern PROGRESS = Pattern.compile("/v1/migrations/([^/]+)/progress");
  private static final Pattern POD = Pattern.compile("/v1/pods/([^/]+)(/logs|/migratability)?");

  private final AgentConfig config;
  private final HostCapabilities capabilities;
  private final PodManager pods;
  private final SourceRole source;
  private final TargetRole target;

  public AgentApi(AgentConfig config, HostCapabilities capabilities, PodManager pods, SourceRole source, TargetRole target) {
    this.config = config;
    this.capabilities = capabilities;
    this.pods = pods;
    this.source = source;
    this.target = target;
  }

  /** An answer: HTTP status and a body (JSON-serialisable object, or String for text). */
  public record Answer(int status, Object body) {}

  /** Routes one request; errors come back as {"error": "..."} with a fitting status. */
  public Answer handle(String method, String path, Map<String, String> query, String body) {
    try {
      return new Answer(200, route(method, path, query, body));
    } catch (ApiException e) {
      return new Answer(e.status(), Map.of("error", e.getMessage()));
    } catch (IllegalArgumentException e) {
      return new Answer(400, Map.of("error", e.getMessage()));
    } catch (RuntimeException e) {
      return new Answer(500, Map.of("error", e.getClass().getSimpleName() + ": " + e.getMessage()));
    } finally {
      MDC.remove("migration");
    }
  }

  private Object route(String method, String path, Map<String, String> query, String body) {
    if (path.equals("/v1/info") && method.equals("GET")) {
      return new HostInfo(config.host(), config.listenIp() + ":" + config.dataPort(), capabilities.asMap(),
          config.memoryCapacityMiB(), pods.reservedMiB(), Warmup.over(), source.peerTls());
    }
    if (path.equals("/v1/pods")) {
      if (method.equals("GET")) {
        return pods.list();
      }
      if (method.equals("POST")) {
        return pods.run(Json.read(body, PodSpec.class));
      }
    }
    if (path.equals("/v1/cpuinfo") && method.equals("GET")) {
      return Map.of("image", cpuinfoDump());
    }
    if (path.equals("/v1/cpuinfo/check") && method.equals("POST")) {
      return cpuinfoCheck(Json.read(body, JsonNode.class).path("image").asText());
    }
    Matcher m = POD.matcher(path);
    if (m.matches()) {
      String name = Names.check("pod", m.group(1));
      if ("/migratability".equals(m.group(2)) && method.equals("GET")) {
        return Map.of("problems", pods.migratability(name));
      }
      if (m.group(2) != null && method.equals("GET")) {
        return pods.logs(name, query.get("container"), 1 << 20);
      }
      if (method.equals("GET")) {
        return pods.status(name);
      }
      if (method.equals("DELETE")) {
        pods.delete(name);
        return Map.of("deleted", name);
      }
    }
    m = PROGRESS.matcher(path);
    if (m.matches() && method.equals("GET")) {
      return source.progress(Names.checkId(m.group(1)));
    }
    m = MIGRATION.matcher(path);
    if (m.matches() && method.equals("POST")) {
      String id = Names.checkId(m.group(1));
      MDC.put("migration", id);
      try {
        long start = System.nanoTime();
        Object answer = migrationStep(id, m.group(2), m.group(3), Json.read(body.isBlank() ? "{}" : body, JsonNode.class));
        LOG.debug("step {}/{} answered in {} us", m.group(2), m.group(3), (System.nanoTime() - start) / 1000);
        return answer;
      } catch (RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new ApiException(500, e.getMessage());
      }
    }
    throw ApiException.notFound("no route " + method + " " + path);
  }

  private Object migrationStep(String id, String role, String step, JsonNode req) throws Exception {
    String pod = req.path("pod").asText(null);
    if (pod == null && req.has("spec")) {
      pod = req.path("spec").path("identity").path("name").asText(null);
    }
    Names.check("pod", pod);
    List<String> faults = new ArrayList<>();
    req.path("faults").forEach(f -> faults.add(f.asText()));
    String key = role + "/" + step;
    switch (key) {
      case "source/checkpoint":
        if (req.hasNonNull("target")) {
          // the frozen round's transfer (a connection per stream), the hand-over
          source.connectAhead(id, req.path("target").asText(), source.streams() + 1);
        }
        return req.path("lazy").asBoolean(false)
            ? source.checkpointLazy(id, pod, req.path("servesTarget").asBoolean(true), bandwidth(req))
            : source.checkpoint(id, pod);
      case "source/presync":
        return source.presync(id, pod, req.path("target").asText(), bandwidth(req));
      case "source/memround":
        return source.memoryRound(id, pod, req.path("target").asText(), bandwidth(req), req.path("round").asInt(1));
      case "source/throttle":
        source.throttle(id, pod, req.path("percent").asInt(0));
        return Map.of("percent", req.path("percent").asInt(0));
      case "source/forget":
        source.forgetPrecopy(id, pod);
        return Map.of("forgotten", true);
      case "source/pump":
        return source.pump(id, pod, req.path("target").asText(), req.path("wait").asBoolean(true),
            req.path("hold").asBoolean(false), bandwidth(req));
      case "source/release-pump":
        return Map.of("released", source.releasePump(id));
      case "source/send":
        return source.send(id, pod, req.path("target").asText(), faults, bandwidth(req));
      case "source/cancel":
        source.cancelTransfer(id);
        return Map.of("cancelled", true);
      case "source/release":
        IdentityHandover.Times t = source.releaseIdentity(id, pod, req.hasNonNull("handTo") ? req.path("handTo").asText() : null);
        return Map.of("released", true, "downAtMicros", t.downAtMicros(), "upAtMicros", t.upAtMicros(), "laps",
            t.laps());
      case "source/release-sockets":
        source.releaseSockets(id, pod);
        return Map.of("released", true);
      case "source/resume":
        source.resume(id, pod);
        return Map.of("resumed", true);
      case "source/finish":
        source.finish(id, pod);
        return Map.of("finished", true);
      case "target/prepare":
        return target.prepare(id, Json.MAPPER.convertValue(req.path("spec"), PodSpec.class), faults,
            req.hasNonNull("tempIp") ? req.path("tempIp").asText() : null,
            req.hasNonNull("tempMac") ? req.path("tempMac").asText() : null);
      case "target/stage-identity":
        target.stageIdentity(id, pod);
        return Map.of("staged", true);
      case "target/identity":
        return Map.of("identity", true, "upAtMicros", target.takeIdentity(id, pod));
      case "target/prepare-restore":
        return target.prepareRestore(id, pod, req.path("ferryPages").asBoolean(false),
            req.hasNonNull("lazy") ? req.path("lazy").asBoolean() : null);
      case "target/restore":
        return target.restore(id, pod, req.hasNonNull("pageServer") ? req.path("pageServer").asText() : null,
            req.path("lazyLocal").asBoolean(false), req.path("ferryPages").asBoolean(false));
      case "target/pagestore":
        return target.openPageStore(id, pod);
      case "target/pages":
        return target.awaitPages(id, pod);
      case "target/commit":
        return target.commit(id, pod);
      case "target/abort":
        target.abort(id, pod);
        return Map.of("aborted", true);
      default:
        throw ApiException.notFound("no migration step " + key);
    }
  }

  private static long bandwidth(JsonNode req) {
    long b = req.path("bandwidth").asLong(0);
    if (b < 0) {
      throw ApiException.badRequest("bandwidth must not be negative");
    }
    return b;
  }

  private String cpuinfoDump() {
    Path dir = tempDir();
    try {
      Exec.checked(capabilities.criuPath(), "cpuinfo", "dump", "-D", dir.toString());
      return Base64.getEncoder().encodeToString(Files.readAllBytes(dir.resolve("cpuinfo.img")));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      Files2.deleteTree(dir);
    }
  }

  private Map<String, Object> cpuinfoCheck(String image) {
    Path dir = tempDir();
    try {
      Files.write(dir.resolve("cpuinfo.img"), Base64.getDecoder().decode(image));
      Exec.Result r = Exec.run(capabilities.criuPath(), "cpuinfo", "check", "-D", dir.toString());
      return Map.of("compatible", r.ok(), "message", (r.stdout() + r.stderr()).strip());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      Files2.deleteTree(dir);
    }
  }

  private Path tempDir() {
    try {
      Path base = config.stateDir().resolve("tmp");
      Files.createDirectories(base);
      return Files.createTempDirectory(base, "cpuinfo");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
