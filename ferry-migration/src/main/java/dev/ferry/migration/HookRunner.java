package dev.ferry.migration;

import dev.ferry.api.HookCall;
import dev.ferry.api.Json;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Calls one hook with a JSON payload and says how it went. An executable gets the payload on
 * stdin (and FERRY_HOOK_PHASE, FERRY_POD in its environment) and succeeds with exit code 0; a
 * webhook gets it POSTed and succeeds with a 2xx status. A call that outlives its timeout is
 * killed (executable) or abandoned (webhook) and counts as "timeout". Never throws: the
 * caller applies the failure policy to the result.
 */
public final class HookRunner {
  private static final int MAX_ANSWER = 1024;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(java.time.Duration.ofSeconds(5)).build();

  /**
   * What a hook is told.
   *
   * @param migrationId the migration
   * @param phase "pre-migration", "post-migration" or "rolled-back"
   * @param pod the pod's name
   * @param source the host the pod runs on (before the migration)
   * @param target the host it moves to
   * @param identity the pod's identity: uid, name, ip, mac
   */
  public record Payload(String migrationId, String phase, String pod, String source, String target,
      Map<String, Object> identity) {}

  /** Calls {@code spec} as hook {@code hook} ("pre-migration" or "post-migration"). */
  public HookCall call(String hook, HookSpec spec, Payload payload) {
    long t0 = System.nanoTime();
    Outcome o;
    try {
      o = spec.url() ? webhook(spec, payload) : executable(spec, payload);
    } catch (IOException e) {
      o = new Outcome("failed", "cannot call " + spec.target() + ": " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      o = new Outcome("failed", "interrupted");
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    return new HookCall(hook, payload.phase(), spec.target(), o.result, ms, o.answer, spec.onFailure());
  }

  private record Outcome(String result, String answer) {}

  private Outcome executable(HookSpec spec, Payload payload) throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(spec.target());
    pb.environment().put("FERRY_HOOK_PHASE", payload.phase());
    pb.environment().put("FERRY_POD", payload.pod());
    pb.environment().put("FERRY_MIGRATION", payload.migrationId());
    pb.redirectErrorStream(true);
    Process p = pb.start();
    CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> readCapped(p.getInputStream()));
    try (OutputStream in = p.getOutputStream()) {
      in.write(Json.write(payload).getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      // the hook did not read its payload: its exit code decides
    }
    if (!p.waitFor(spec.timeout().toMillis(), TimeUnit.MILLISECONDS)) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      p.waitFor(5, TimeUnit.SECONDS);
      return new Outcome("timeout", "no answer within " + spec.timeout().toMillis() + " ms (killed)");
    }
    String answer = out.getNow("");
    try {
      answer = out.get(1, TimeUnit.SECONDS);
    } catch (Exception e) {
      // output still held by a child the hook left behind: take what we have
    }
    return p.exitValue() == 0 ? new Outcome("ok", answer)
        : new Outcome("failed", "exit code " + p.exitValue() + (answer.isEmpty() ? "" : ": " + answer));
  }

  private Outcome webhook(HookSpec spec, Payload payload) throws IOException, InterruptedException {
    HttpRequest req = HttpRequest.newBuilder(URI.create(spec.target()))
        .timeout(spec.timeout())
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(Json.write(payload)))
        .build();
    try {
      HttpResponse<String> r = http.sendAsync(req, HttpResponse.BodyHandlers.ofString())
          .get(spec.timeout().toMillis(), TimeUnit.MILLISECONDS);
      String body = cap(r.body());
      return r.statusCode() / 100 == 2 ? new Outcome("ok", body)
          : new Outcome("failed", "HTTP " + r.statusCode() + (body.isEmpty() ? "" : ": " + body));
    } catch (java.util.concurrent.TimeoutException e) {
      return new Outcome("timeout", "no answer within " + spec.timeout().toMillis() + " ms");
    } catch (java.util.concurrent.ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof java.net.http.HttpTimeoutException) {
        return new Outcome("timeout", "no answer within " + spec.timeout().toMillis() + " ms");
      }
      return new Outcome("failed", "cannot call " + spec.target() + ": " + c);
    }
  }

  private static String readCapped(InputStream in) {
    try {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      byte[] buf = new byte[4096];
      int n;
      while ((n = in.read(buf)) > 0) {
        if (b.size() < MAX_ANSWER) {
          b.write(buf, 0, Math.min(n, MAX_ANSWER - b.size()));
        }
      }
      return b.toString(StandardCharsets.UTF_8).strip();
    } catch (IOException e) {
      return "";
    }
  }

  private static String cap(String s) {
    s = s == null ? "" : s.strip();
    return s.length() > MAX_ANSWER ? s.substring(0, MAX_ANSWER) : s;
  }
}
