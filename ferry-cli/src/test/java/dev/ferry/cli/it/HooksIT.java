package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationReport;
import dev.ferry.migration.HookSpec;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.PodRecord;
import dev.ferry.migration.ProgressListener;
import dev.ferry.runtime.Netns;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** Pre- and post-migration hooks: what they are told, when, and what their failures do. */
class HooksIT {
  private static Path script(String body) throws Exception {
    Path p = Files.createTempFile("ferry-hook", ".sh");
    Files.writeString(p, "#!/bin/sh\ncat > /dev/null\n" + body + "\n");
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
    p.toFile().deleteOnExit();
    return p;
  }

  @Test
  void aFailingOrTimingOutPreHookStopsTheMigrationBeforeAnyFreeze() throws Exception {
    try (TestLab t = TestLab.up()) {
      t.runCounter("counter", "host-a");
      for (HookSpec pre : List.of(new HookSpec(script("echo no capacity upstream; exit 3").toString(), Duration.ofSeconds(5),
          "abort"), new HookSpec(script("sleep 30").toString(), Duration.ofMillis(500), "abort"))) {
        long before = t.counts("counter").size();
        MigrationFailedException e = org.junit.jupiter.api.Assertions.assertThrows(MigrationFailedException.class,
            () -> t.coordinator.migrate(new MigrationOptions("counter", "host-b", "cold", List.of()),
                new HookSpec.Hooks(pre, null), ProgressListener.NONE));
        MigrationReport r = e.report();
        assertThat(r.outcome).isEqualTo("rolled-back");
        assertThat(r.error).contains("step pre-hook");
        assertThat(r.hooks).singleElement().satisfies(h -> {
          assertThat(h.hook()).isEqualTo("pre-migration");
          assertThat(h.result()).isIn("failed", "timeout");
          assertThat(h.ms()).isLessThan(3000);
        });
        assertThat(r.freezeStartEpochMs).as("never frozen").isNull();
        assertThat(t.store.steps(r.migrationId).keySet()).containsExactly("pre-hook");
        assertThat(t.containers()).noneMatch(c -> c.contains("-host-b-"));
        assertThat(t.store.pod("counter").orElseThrow().host()).isEqualTo("host-a");
        t.waitForCount("counter", t.counts("counter").get((int) before - 1) + 10);
      }
      assertThat(t.coordinator.ipam().leases()).extracting(l -> l.owner()).containsExactly("pod:counter");
      TestLab.assertContiguousFromOne(t.counts("counter"));

      // the same through the CLI: non-zero exit, and why
      TestLab.CliResult cli = t.cli("migrate", "counter", "--to", "host-b", "--pre-hook", script("exit 7").toString());
      assertThat(cli.code()).isNotZero();
      assertThat(cli.err()).contains("pre-migration hook").contains("exit code 7").contains("runs on host-a as before");
    }
  }

  @Test
  void webhooksGetThePodsIdentityInOrderAndAFailingPostHookIsIgnoredWhenAskedTo() throws Exception {
    List<JsonNode> calls = new CopyOnWriteArrayList<>();
    List<String> seen = new CopyOnWriteArrayList<>();
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    try (TestLab t = TestLab.up()) {
      server.createContext("/", ex -> {
        JsonNode p = Json.MAPPER.readTree(ex.getRequestBody().readAllBytes());
        calls.add(p);
        // what the world looked like when the hook was called
        seen.add(p.path("phase").asText() + ": pod on " + t.store.pod("counter").orElseThrow().host()
            + ", placeholder " + Netns.exists(t.name + "-host-b-counter"));
        boolean post = ex.getRequestURI().getPath().equals("/post");
        byte[] answer = (post ? "registry down" : "admitted").getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(post ? 503 : 200, answer.length);
        ex.getResponseBody().write(answer);
        ex.close();
      });
      server.start();
      String base = "http://127.0.0.1:" + server.getAddress().getPort();
      PodRecord pod = t.runCounter("counter", "host-a");
      Path report = Files.createTempFile("ferry-report", ".json");
      TestLab.CliResult r = t.cli("migrate", "counter", "--to", "host-b", "--strategy", "cold", "--pre-hook", base + "/pre",
          "--post-hook", base + "/post", "--hook-timeout", "3000", "--hook-failure", "ignore", "--json-report",
          report.toString());
      assertThat(r.code()).as(r.err()).isZero();
      MigrationReport rep = Json.readFile(report, MigrationReport.class);
      Files.delete(report);

      assertThat(seen).containsExactly("pre-migration: pod on host-a, placeholder false",
          "post-migration: pod on host-b, placeholder true");
      assertThat(calls).hasSize(2);
      for (JsonNode c : calls) {
        assertThat(c.path("migrationId").asText()).isEqualTo(rep.migrationId);
        assertThat(c.path("pod").asText()).isEqualTo("counter");
        assertThat(c.path("source").asText()).isEqualTo("host-a");
        assertThat(c.path("target").asText()).isEqualTo("host-b");
        assertThat(c.path("identity").path("ip").asText()).isEqualTo(pod.spec().identity().ip());
        assertThat(c.path("identity").path("uid").asText()).isEqualTo(pod.spec().identity().uid());
        assertThat(c.path("identity").path("mac").asText()).isEqualTo(pod.spec().identity().mac());
        assertThat(c.path("identity").path("name").asText()).isEqualTo("counter");
      }
      assertThat(rep.outcome).isEqualTo("migrated");
      assertThat(rep.hooks).extracting(h -> h.hook() + " " + h.phase() + " " + h.result() + " " + h.policy() + " " + h.answer())
          .containsExactly("pre-migration pre-migration ok ignore admitted",
              "post-migration post-migration failed ignore HTTP 503: registry down");
      assertThat(t.store.pod("counter").orElseThrow().host()).isEqualTo("host-b");
      t.waitForCount("counter", t.counts("counter").size() + 10L);
      TestLab.assertContiguousFromOne(t.counts("counter"));
      assertThatThrownBy(() -> t.coordinator.migrate(new MigrationOptions("counter", "host-a", "cold", List.of()),
          new HookSpec.Hooks(new HookSpec("relative", null, "abort"), null), ProgressListener.NONE))
          .hasMessageContaining("absolute path");
    } finally {
      server.stop(0);
    }
  }
}
