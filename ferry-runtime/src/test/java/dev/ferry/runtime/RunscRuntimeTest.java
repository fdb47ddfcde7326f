package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class RunscRuntimeTest {
  @Test
  void onlyBuildsOf2024AndLaterCanCheckpointRedis() {
    assertThat(RunscRuntime.versionUsable("0.0~20240729.0")).isTrue();
    assertThat(RunscRuntime.versionUsable("release-20250101.0")).isTrue();
    assertThat(RunscRuntime.versionUsable("0.0~20221219.0")).isFalse();
    assertThat(RunscRuntime.versionUsable(null)).isFalse();
    assertThat(RunscRuntime.versionUsable("unknown")).isFalse();
  }

  @Test
  void connectionsThatACheckpointWouldResetAreFoundInProcNetTcp() {
    String tcp = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0        1 1 0 0 0 0 -1
           1: 02014D0A:18EB 64004D0A:AD8E 01 00000000:00000000 00:00000000 00000000     0        0        7 1 0 0 0 0 -1
           2: 0100007F:18EB 0100007F:9C40 06 00000000:00000000 00:00000000 00000000     0        0        0 1 0 0 0 0 -1
           3: 02014D0A:18EB 64004D0A:AD90 08 00000000:00000000 00:00000000 00000000     0        0        9 1 0 0 0 0 -1
        """;
    assertThat(RunscRuntime.connectionsIn(tcp)).containsExactly("02014D0A:18EB 64004D0A:AD8E established",
        "02014D0A:18EB 64004D0A:AD90 close-wait");
    assertThat(RunscRuntime.connectionsIn(tcp.lines().limit(2).reduce("", (a, b) -> a + b + "\n"))).isEmpty();
  }

  @Test
  void whatRunscCannotDoSaysSo() {
    RunscRuntime r = new RunscRuntime("runsc", Path.of("/nonexistent"));
    assertThatThrownBy(() -> r.restoreLazy("x", Path.of("b"), Path.of("i"), Path.of("w")))
        .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("runsc").hasMessageContaining("cold");
    assertThatThrownBy(() -> r.checkpointLazy("x", Path.of("i"), Path.of("w"), "10.0.0.1", 1))
        .hasMessageContaining("runsc");
    assertThatThrownBy(() -> r.limitCpu("x", 50)).hasMessageContaining("runsc");
    assertThat(r.state("x").status()).isEqualTo("missing");
    assertThat(r.list("x")).isEmpty();
  }
}
