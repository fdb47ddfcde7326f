package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.Json;
import dev.ferry.api.PodIdentity;
import dev.ferry.api.PodSpec;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What the coordinator refuses for a pod's runtime before anything is prepared (issue 8). */
class RuntimeRefusalTest {
  private static PodRecord pod(String runtime) {
    return new PodRecord(new PodSpec(new PodIdentity("u", "kv", "10.77.1.2", 16, Coordinator.macFor("10.77.1.2")),
        List.of(new ContainerSpec("app", List.of("redis-server"), List.of())), 64, 0, List.of(), runtime,
        List.of("redis-cli", "client", "kill", "type", "normal")), "host-a", "running");
  }

  private static final Map<String, Object> WITH_RUNSC = Map.of("runscUsable", true);
  private static final Map<String, Object> WITHOUT_RUNSC = Map.of("runscUsable", false, "runscUnusableReason",
      "runsc not found or does not run (runsc); run scripts/setup-host.sh");

  @Test
  void aRunscPodMovesColdToAHostWithRunsc() {
    assertThatCode(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "cold", List.of()),
        pod("runsc"), WITH_RUNSC)).doesNotThrowAnyException();
    assertThatCode(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "auto", List.of())
        .withRuntime("runsc"), pod("runsc"), WITH_RUNSC)).doesNotThrowAnyException();
  }

  @Test
  void aTargetWithoutRunscIsRefusedWithItsReason() {
    assertThatThrownBy(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "cold", List.of()),
        pod("runsc"), WITHOUT_RUNSC))
        .hasMessageContaining("target host host-b cannot run runsc pods")
        .hasMessageContaining("runsc not found")
        .hasMessageContaining("stays where it is");
    assertThatThrownBy(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "cold", List.of()),
        pod("runsc"), Map.of())).hasMessageContaining("it has no runsc");
    // a runc pod does not care
    assertThatCode(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "precopy", List.of()),
        pod("runc"), WITHOUT_RUNSC)).doesNotThrowAnyException();
  }

  @Test
  void strategiesRunscHasNoMeansForAreRefused() {
    for (String s : List.of("precopy", "postcopy", "hybrid")) {
      assertThatThrownBy(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", s, List.of()), pod("runsc"),
          WITH_RUNSC)).hasMessageContaining(s + " is impossible").hasMessageContaining("--strategy cold");
    }
  }

  @Test
  void migratingBetweenRuntimesIsRefused() {
    assertThatThrownBy(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "cold", List.of())
        .withRuntime("runc"), pod("runsc"), WITH_RUNSC)).hasMessageContaining("runs on runsc, not runc")
        .hasMessageContaining("between runtimes");
    assertThatThrownBy(() -> Coordinator.checkRuntime(new MigrationOptions("kv", "host-b", "cold", List.of())
        .withRuntime("runsc"), pod("runc"), WITH_RUNSC)).hasMessageContaining("runs on runc, not runsc");
  }

  @Test
  void theRuntimeIsPartOfThePodAndOldRecordsAreRunc() {
    PodSpec spec = pod("runsc").spec();
    PodSpec back = Json.read(Json.write(spec), PodSpec.class);
    assertThat(back.runtime()).isEqualTo("runsc");
    assertThat(back.drain()).containsExactly("redis-cli", "client", "kill", "type", "normal");
    String old = Json.write(pod("runc").spec()).replaceAll("\"runtime\"[^,]*,", "").replaceAll(",\\s*\"drain\"[^\\]]*\\]", "");
    assertThat(old).doesNotContain("runtime").doesNotContain("drain");
    assertThat(Json.read(old, PodSpec.class).runtime()).isEqualTo("runc");
    assertThat(Json.read(old, PodSpec.class).runsc()).isFalse();
  }

  @Test
  void migrationOptionsKeepTheirRuntimeWhenAutoChoosesAStrategy() {
    assertThat(new MigrationOptions("kv", "host-b", "auto", List.of()).withRuntime("runsc").withStrategy("cold").runtime())
        .isEqualTo("runsc");
  }
}
