package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import dev.ferry.api.HookCall;
import dev.ferry.api.Json;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HookRunnerTest {
  @TempDir Path dir;
  private final HookRunner runner = new HookRunner();
  private final HookRunner.Payload payload = new HookRunner.Payload("m1", "pre-migration", "redis", "host-a", "host-b",
      Map.of("uid", "u1", "name", "redis", "ip", "10.77.1.2", "mac", "02:fe:0a:4d:01:02"));

  private Path script(String body) throws IOException {
    Path p = dir.resolve("hook-" + System.nanoTime() + ".sh");
    Files.writeString(p, "#!/bin/sh\n" + body + "\n");
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
    return p;
  }

  @Test
  void anExecutableGetsThePayloadOnStdinAndItsAnswerIsKept() throws Exception {
    Path got = dir.resolve("payload.json");
    Path hook = script("cat > " + got + "; echo \"ok $FERRY_HOOK_PHASE $FERRY_POD\"");
    HookCall c = runner.call("pre-migration", new HookSpec(hook.toString(), Duration.ofSeconds(5), "abort"), payload);
    assertThat(c.result()).isEqualTo("ok");
    assertThat(c.answer()).isEqualTo("ok pre-migration redis");
    JsonNode p = Json.MAPPER.readTree(Files.readString(got));
    assertThat(p.path("phase").asText()).isEqualTo("pre-migration");
    assertThat(p.path("source").asText()).isEqualTo("host-a");
    assertThat(p.path("target").asText()).isEqualTo("host-b");
    assertThat(p.path("identity").path("ip").asText()).isEqualTo("10.77.1.2");
  }

  @Test
  void aNonZeroExitFailsAndALateHookTimesOut() throws Exception {
    HookCall failed = runner.call("pre-migration", new HookSpec(script("echo no room; exit 3").toString(), null, "abort"),
        payload);
    assertThat(failed.result()).isEqualTo("failed");
    assertThat(failed.answer()).contains("exit code 3").contains("no room");
    long t0 = System.nanoTime();
    HookCall late = runner.call("pre-migration", new HookSpec(script("sleep 30").toString(), Duration.ofMillis(300),
        "ignore"), payload);
    assertThat(late.result()).isEqualTo("timeout");
    assertThat(late.policy()).isEqualTo("ignore");
    assertThat((System.nanoTime() - t0) / 1_000_000).isLessThan(5000);
    HookCall missing = runner.call("pre-migration", new HookSpec(dir.resolve("none").toString(), null, "abort"), payload);
    assertThat(missing.result()).isEqualTo("failed");
  }

  @Test
  void aWebhookGetsThePayloadPostedAndItsStatusDecides() throws Exception {
    List<String> bodies = new CopyOnWriteArrayList<>();
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", ex -> {
      bodies.add(new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
      String path = ex.getRequestURI().getPath();
      if (path.equals("/slow")) {
        try {
          Thread.sleep(3000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      byte[] answer = (path.equals("/refuse") ? "no" : "yes").getBytes(StandardCharsets.UTF_8);
      ex.sendResponseHeaders(path.equals("/refuse") ? 409 : 200, answer.length);
      ex.getResponseBody().write(answer);
      ex.close();
    });
    server.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
    server.start();
    try {
      String base = "http://127.0.0.1:" + server.getAddress().getPort();
      HookCall ok = runner.call("pre-migration", new HookSpec(base + "/admit", null, "abort"), payload);
      assertThat(ok.result()).isEqualTo("ok");
      assertThat(ok.answer()).isEqualTo("yes");
      assertThat(Json.MAPPER.readTree(bodies.get(0)).path("pod").asText()).isEqualTo("redis");
      HookCall refused = runner.call("pre-migration", new HookSpec(base + "/refuse", null, "abort"), payload);
      assertThat(refused.result()).isEqualTo("failed");
      assertThat(refused.answer()).isEqualTo("HTTP 409: no");
      HookCall slow = runner.call("pre-migration", new HookSpec(base + "/slow", Duration.ofMillis(200), "abort"), payload);
      assertThat(slow.result()).isEqualTo("timeout");
      assertThat(slow.ms()).isLessThan(2000);
    } finally {
      server.stop(0);
    }
  }

  @Test
  void hooksSurviveTheStoreForARecovery() {
    HookSpec.Hooks h = new HookSpec.Hooks(new HookSpec("/bin/true", Duration.ofMillis(1500), "ignore"),
        new HookSpec("http://127.0.0.1:9/x", null, "abort"));
    assertThat(HookSpec.Hooks.fromJson(h.toJson())).isEqualTo(h);
    assertThat(HookSpec.Hooks.fromJson(HookSpec.Hooks.NONE.toJson())).isEqualTo(HookSpec.Hooks.NONE);
    assertThat(HookSpec.Hooks.fromJson(null)).isEqualTo(HookSpec.Hooks.NONE);
  }

  @Test
  void badSpecsAreRefusedUpFront() {
    assertThatThrownBy(() -> new HookSpec("relative/hook", null, "abort")).hasMessageContaining("absolute path");
    assertThatThrownBy(() -> new HookSpec("/bin/true", null, "retry")).hasMessageContaining("'abort' or 'ignore'");
    assertThatThrownBy(() -> new HookSpec("/bin/true", Duration.ZERO, "abort")).hasMessageContaining("out of range");
  }
}
