package dev.ferry.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class MigrationPhaseTest {
  @Test
  void onlySucceededRolledBackAndFailedAreFinal() {
    assertThat(Arrays.stream(MigrationPhase.values()).filter(MigrationPhase::isFinal))
        .containsExactly(MigrationPhase.SUCCEEDED, MigrationPhase.ROLLED_BACK, MigrationPhase.FAILED);
  }

  @Test
  void displayNamesMatchTheDesign() {
    assertThat(MigrationPhase.ROLLING_BACK.displayName()).isEqualTo("RollingBack");
    assertThat(MigrationPhase.TRANSFERRING.displayName()).isEqualTo("Transferring");
  }

  @Test
  void reportKeepsTheContractNames() throws Exception {
    MigrationReport r = new MigrationReport();
    r.outcome = "migrated";
    var node = Json.MAPPER.readTree(Json.write(r));
    for (String f : new String[] {"outcome", "strategy", "runtime", "pod", "sourceHost", "targetHost", "ipBefore", "ipAfter",
        "uidBefore", "uidAfter", "downtimeMs", "frozenMs", "totalMs", "bytesTransferred", "precopyRounds", "writesAcked",
        "writesLost", "tcpConnectionPreserved", "phases"}) {
      assertThat(node.has(f)).as(f).isTrue();
    }
  }
}
