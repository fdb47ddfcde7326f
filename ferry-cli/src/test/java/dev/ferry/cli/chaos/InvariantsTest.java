package dev.ferry.cli.chaos;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.PodIdentity;
import dev.ferry.api.PodSpec;
import dev.ferry.cli.demo.IpOwnerSamples;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.migration.PodRecord;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class InvariantsTest {
  private static final LabSnapshot LAB = new LabSnapshot(Map.of("netns", List.of("x-H", "x-H", "x-H-kv"),
      "lease", List.of("pod:kv pod 10.77.1.2")));

  private static PodRecord pod(String host) {
    return new PodRecord(new PodSpec(new PodIdentity("uid-1", "kv", "10.77.1.2", 16, "02:00:00:00:00:01"), List.of(), 512, 1024),
        host, "running");
  }

  private static MigrationRecord migration(MigrationPhase phase) {
    return new MigrationRecord("m-1", "kv", "host-a", "host-b", "cold", phase, phase == MigrationPhase.SUCCEEDED, 1, 0, 0,
        null, null);
  }

  private static LoadResult load(long lost) {
    LoadResult l = new LoadResult();
    l.acked = 1000;
    l.verified = true;
    l.lost = lost;
    return l;
  }

  private static IpOwnerSamples.Summary owners(int max) {
    return new IpOwnerSamples.Summary(100, 100, max, 1, List.of("host-a", "host-b"), 0, List.of());
  }

  @Test
  void aCleanMigrationHoldsEveryInvariant() {
    assertThat(Invariants.check("kv", Map.of("host-b", "running"), pod("host-b"), migration(MigrationPhase.SUCCEEDED),
        "10.77.1.2", load(0), owners(1), LAB, LAB)).isEmpty();
  }

  @Test
  void eachBrokenInvariantIsNamed() {
    LabSnapshot leaky = new LabSnapshot(Map.of("netns", List.of("x-H", "x-H", "x-H-kv", "x-H-kv"),
        "lease", List.of("pod:kv pod 10.77.1.2", "placeholder:m-1 placeholder 10.77.1.9")));
    List<String> v = Invariants.check("kv", Map.of("host-a", "running", "host-b", "running"), pod("host-a"),
        migration(MigrationPhase.RESTORING), "10.77.1.3", load(7), owners(2), LAB, leaky);
    assertThat(String.join("\n", v))
        .contains("runs on 2 hosts")
        .contains("left in phase Restoring")
        .contains("IP changed from 10.77.1.3")
        .contains("7 acknowledged writes lost")
        .contains("answered by 2 hosts at once")
        .contains("netns left behind: [x-H-kv]")
        .contains("lease left behind: [placeholder:m-1 placeholder 10.77.1.9]");
  }

  @Test
  void anOutcomeThatDoesNotMatchWherePodRunsIsAViolation() {
    List<String> v = Invariants.check("kv", Map.of("host-a", "running"), pod("host-a"),
        migration(MigrationPhase.SUCCEEDED), "10.77.1.2", load(0), owners(1), LAB, LAB);
    assertThat(v).singleElement().asString().contains("ended Succeeded but the pod runs on host-a");
  }

  @Test
  void aLeftoverFrozenCopyAndALostPodAreViolations() {
    assertThat(Invariants.check("kv", Map.of("host-a", "paused"), pod("host-a"), migration(MigrationPhase.ROLLED_BACK),
        "10.77.1.2", load(0), owners(1), LAB, LAB))
        .anyMatch(s -> s.contains("runs on 0 hosts"))
        .anyMatch(s -> s.contains("a paused copy of pod kv is left on host-a"));
  }

  @Test
  void aClientThatCouldNotReadBackIsAViolation() {
    LoadResult l = load(0);
    l.verified = false;
    l.error = "connection refused";
    assertThat(Invariants.check("kv", Map.of("host-a", "running"), pod("host-a"), migration(MigrationPhase.ROLLED_BACK),
        "10.77.1.2", l, owners(1), LAB, LAB)).singleElement().asString().contains("could not read its writes back");
  }
}
