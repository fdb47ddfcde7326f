package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.ferry.api.Json;
import dev.ferry.cli.chaos.CellResult;
import dev.ferry.cli.chaos.FaultMatrix;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quick slice of the fault matrix ({@code ferry chaos --quick}), as a user runs it: each
 * process killed in the frozen window (runc too, mid-checkpoint), a corrupt and a truncated image, a connection reset, a
 * failing hook and a cancel racing the commit, each against Redis under write load; after each,
 * every invariant holds.
 */
class ChaosQuickIT {
  @TempDir Path tmp;

  @Test
  void everyCellOfTheQuickSliceHoldsEveryInvariant() throws Exception {
    TestLab.assumeHostReady();
    Path json = tmp.resolve("chaos.json");
    TestLab.CliResult r = TestLab.runCli("chaos", "--quick", "--json", json.toString());
    List<CellResult> cells = Json.MAPPER.readValue(json.toFile(), new TypeReference<List<CellResult>>() {});
    assertThat(cells).hasSize(FaultMatrix.quick().size());
    assertThat(cells).allSatisfy(c -> {
      assertThat(c.violations()).as(c.fault() + " @ " + c.phase() + " / " + c.strategy()).isEmpty();
      assertThat(c.invariantsHeld()).isTrue();
      assertThat(c.writesAcked()).as("the client wrote during " + c.fault()).isGreaterThan(100);
    });
    assertThat(r.code()).as(r.out()).isZero();
    CellResult baseline = cells.stream().filter(c -> c.fault().equals("none")).findFirst().orElseThrow();
    assertThat(baseline.outcome()).isEqualTo("migrated");
    for (String kill : List.of("source-agent-kill", "target-agent-kill", "coordinator-kill", "source-criu-kill")) {
      assertThat(cells).filteredOn(c -> c.fault().equals(kill)).allSatisfy(c -> {
        assertThat(c.injected()).as(kill + " struck").isTrue();
        assertThat(c.outcome()).as(kill + " before the commit point").isEqualTo("rolled-back");
      });
    }
    assertThat(cells).filteredOn(c -> c.fault().equals("corrupt-in-transit") || c.fault().equals("truncated-image"))
        .allSatisfy(c -> assertThat(c.outcome()).isEqualTo("rolled-back"));
    assertThat(cells).filteredOn(c -> c.fault().equals("connection-reset"))
        .allSatisfy(c -> assertThat(c.outcome()).as("a reset transfer resumes").isEqualTo("migrated"));
    TestLab.assertNothingLeft("xchaos");
  }
}
