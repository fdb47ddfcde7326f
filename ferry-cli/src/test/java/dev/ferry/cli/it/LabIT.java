package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.lab.Lab;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Netns;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The lab: idempotent up, and a down that removes everything even after kill -9 mid-migration. */
class LabIT {
  @Test
  void upIsIdempotentAndRestartsDeadAgents() throws Exception {
    try (TestLab t = TestLab.up()) {
      var host = t.lab.config().host("host-a");
      long pid = t.lab.agentPid(host).orElseThrow();
      Lab.up(t.name, List.of("host-a", "host-b"), 4096);
      assertThat(t.lab.agentPid(host).orElseThrow()).as("a live agent is left alone").isEqualTo(pid);
      ProcessHandle.of(pid).orElseThrow().destroyForcibly();
      ProcessHandle.of(pid).ifPresent(p -> p.onExit().join());
      Lab.up(t.name, List.of("host-a", "host-b"), 4096);
      assertThat(t.lab.agentAlive(host)).isTrue();
      // the lab never touches the machine's own network
      assertThat(Exec.run("ip", "link", "show").stdout()).doesNotContain("labbr").doesNotContain(t.name);
      assertThat(t.cli("lab", "show").out()).contains("host-a").contains("10.77.0.11").contains("running");
    }
  }

  @Test
  void criuStartsFromItsKernelFeatureCacheAfterAnAgentStarted() throws Exception {
    java.nio.file.Files.deleteIfExists(java.nio.file.Path.of("/run/criu.kdat")); // as after a reboot
    try (TestLab t = TestLab.up()) {
      // agents start by making the cache; every CRIU run then skips its ~30 ms kernel probe
      String criu = dev.ferry.runtime.CriuBinary.locate();
      java.nio.file.Path log = java.nio.file.Files.createTempFile("ferry-criu-check", ".log");
      try {
        Exec.run(List.of(criu, "check", "-v4", "-o", log.toString()), java.time.Duration.ofSeconds(30), java.util.Map.of());
        assertThat(java.nio.file.Files.readString(log)).contains("Loaded kdat cache from /run/criu.kdat");
      } finally {
        java.nio.file.Files.deleteIfExists(log);
      }
    }
  }

  @Test
  void downCleansUpAfterAgentsAreKilledInTheMiddleOfAMigration() throws Exception {
    TestLab t = TestLab.up();
    try {
      t.runCounter("counter", "host-a");
      // the target agent dies mid-transfer, leaving its placeholder; then the source agent
      // is killed -9 too, with the pod resumed or not: lab down must still remove it all
      TestLab.CliResult r = t.cli("migrate", "counter", "--to", "host-b", "--inject-fault", "target-agent-crash-in-transfer");
      assertThat(r.code()).isNotZero();
      t.lab.config().hosts().forEach(h -> t.lab.agentPid(h).flatMap(ProcessHandle::of).ifPresent(ProcessHandle::destroyForcibly));
      assertThat(Netns.list(t.name + "-")).isNotEmpty();
    } finally {
      t.close(); // lab down + asserts nothing is left
    }
    Lab.down(t.name); // and again: idempotent
    TestLab.assertNothingLeft(t.name);
  }
}
