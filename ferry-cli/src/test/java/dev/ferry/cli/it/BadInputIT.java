package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Bad requests get a clear error, a non-zero exit code, and change nothing. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BadInputIT {
  private TestLab t;
  private long appPid;

  @BeforeAll
  void up() throws Exception {
    t = TestLab.up();
    t.runCounter("counter", "host-a");
    appPid = pid();
  }

  @AfterAll
  void down() {
    if (t != null) {
      t.close();
    }
  }

  private long pid() throws Exception {
    try (var a = t.lab.client("host-a")) {
      return a.pod("counter").containers().get(1).pid();
    }
  }

  /** The pod runs where it ran, as the same process; no migration was recorded; host-b is empty. */
  private void assertNothingChanged() throws Exception {
    assertThat(t.store.pod("counter").orElseThrow().host()).isEqualTo("host-a");
    assertThat(pid()).isEqualTo(appPid);
    assertThat(t.store.migrations()).isEmpty();
    try (var b = t.lab.client("host-b")) {
      assertThat(b.pods()).isEmpty();
    }
    assertThat(t.containers()).noneMatch(id -> id.contains("-host-b-"));
  }

  private void assertRefused(List<String> args, String message) throws Exception {
    TestLab.CliResult r = t.cli(args.toArray(new String[0]));
    assertThat(r.code()).as("exit code of %s", args).isNotZero();
    assertThat(r.err()).contains(message);
    assertNothingChanged();
  }

  @Test
  void unknownPod() throws Exception {
    assertRefused(List.of("migrate", "nope", "--to", "host-b"), "unknown pod 'nope'");
  }

  @Test
  void unknownHost() throws Exception {
    assertRefused(List.of("migrate", "counter", "--to", "host-z"), "unknown host 'host-z'");
  }

  @Test
  void migratingToItsOwnHost() throws Exception {
    assertRefused(List.of("migrate", "counter", "--to", "host-a"), "already runs on host-a");
  }

  @Test
  void unsupportedStrategy() throws Exception {
    assertRefused(List.of("migrate", "counter", "--to", "host-b", "--strategy", "teleport"), "strategy 'teleport' is not available; use one of [auto, cold, precopy, postcopy, hybrid]");
  }

  @Test
  void aFreezeBudgetNoStrategyCanKeepIsRefusedBeforeAnythingFreezes() throws Exception {
    assertRefused(List.of("migrate", "counter", "--to", "host-b", "--max-freeze", "1", "--on-budget-miss", "abort"),
        "no allowed strategy keeps the 1 ms freeze budget");
    assertRefused(List.of("migrate", "counter", "--to", "host-b", "--on-budget-miss", "maybe"), "must be 'proceed', 'throttle' or 'abort'");
  }

  @Test
  void hostileNamesAndMissingPrograms() throws Exception {
    assertRefused(List.of("run", "--host", "host-b", "../x", "--", "sleep", "9"), "invalid");
    assertRefused(List.of("run", "--host", "host-b", "ok", "--", "no-such-program-here"), "not found on PATH");
    assertRefused(List.of("run", "--host", "host-q", "ok", "--", "sleep", "9"), "unknown host 'host-q'");
    assertRefused(List.of("run", "--host", "host-b", "counter", "--", "sleep", "9"), "exists already");
    assertRefused(List.of("migrate", "counter"), "usage: ferry migrate POD --to HOST");
    assertThat(t.store.pods()).hasSize(1);
  }

  @Test
  void targetWithoutWorkingCriu() throws Exception {
    t.restartAgent("host-b", Map.of("FERRY_CRIU", "/nonexistent/criu"));
    try {
      assertRefused(List.of("migrate", "counter", "--to", "host-b"), "host-b cannot restore pods: CRIU not found");
    } finally {
      t.restartAgent("host-b", Map.of());
    }
  }

  @Test
  void aPodHoldingAFileLockIsRefusedBeforeAnythingFreezes() throws Exception {
    t.coordinator.runPod("host-a", "locker", List.of(new dev.ferry.api.ContainerSpec("app",
        List.of("flock", "/tmp/lock", "/bin/busybox", "sleep", "100000"), List.of())), 64);
    try {
      long lockerPid;
      try (var a = t.lab.client("host-a")) {
        lockerPid = a.pod("locker").containers().get(1).pid();
      }
      TestLab.CliResult r = t.cli("migrate", "locker", "--to", "host-b");
      assertThat(r.code()).isNotZero();
      assertThat(r.err()).contains("pod 'locker' cannot be migrated; nothing was frozen or prepared")
          .contains("container app: process flock").contains("holds a FLOCK").contains("lock");
      try (var a = t.lab.client("host-a")) {
        assertThat(a.pod("locker").running()).isTrue();
        assertThat(a.pod("locker").containers().get(1).pid()).as("the same process, never frozen").isEqualTo(lockerPid);
      }
      assertThat(t.store.migrations()).isEmpty();
    } finally {
      t.coordinator.deletePod("locker");
    }
    assertNothingChanged();
  }
}
