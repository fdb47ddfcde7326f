package dev.ferry.cli.chaos;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.api.MigrationPhase;
import java.util.List;
import org.junit.jupiter.api.Test;

class FaultMatrixTest {
  @Test
  void theFullMatrixHasEveryFaultForEveryStrategyAndPreCopyPhasesOnlyWherePreCopyRuns() {
    List<Cell> cells = FaultMatrix.full(FaultMatrix.STRATEGIES);
    for (String s : FaultMatrix.STRATEGIES) {
      for (Fault f : Fault.values()) {
        assertThat(cells).as(f + " / " + s).anyMatch(c -> c.fault() == f && c.strategy().equals(s));
      }
    }
    assertThat(cells).noneMatch(c -> c.phase() == MigrationPhase.PRECOPY
        && (c.strategy().equals("cold") || c.strategy().equals("postcopy")));
    assertThat(cells).anyMatch(c -> c.phase() == MigrationPhase.PRECOPY && c.strategy().equals("hybrid"));
    assertThat(cells).doesNotHaveDuplicates();
  }

  @Test
  void theQuickSliceKillsEachProcessAndCoversTheBaseline() {
    List<Cell> quick = FaultMatrix.quick();
    assertThat(quick).extracting(Cell::fault).contains(Fault.NONE, Fault.SOURCE_AGENT_KILL, Fault.TARGET_AGENT_KILL,
        Fault.COORDINATOR_KILL, Fault.SOURCE_CRIU_KILL, Fault.CANCEL_AT_COMMIT);
    assertThat(quick).allMatch(c -> c.fault().timed() == (c.phase() != null));
  }

  @Test
  void faultsAreFoundByIdAndAnUnknownOneIsNamed() {
    assertThat(Fault.byId("link-down")).isEqualTo(Fault.LINK_DOWN);
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Fault.byId("meteor"))
        .hasMessageContaining("unknown fault 'meteor'").hasMessageContaining("source-agent-kill");
  }

  @Test
  void aCellIsNamedAsTheTableWritesItAndOnlyCellsOfTheMatrixAreAccepted() {
    assertThat(Cell.parse("source-agent-kill@Postcopy/hybrid"))
        .isEqualTo(new Cell(Fault.SOURCE_AGENT_KILL, MigrationPhase.POSTCOPY, "hybrid"));
    Cell c = new Cell(Fault.COORDINATOR_KILL, MigrationPhase.CUTOVER, "postcopy");
    assertThat(Cell.parse(c.toString())).isEqualTo(c);
    assertThat(Cell.parse("corrupt-in-transit@" + Fault.WHOLE_MIGRATION + "/cold").phase()).isNull();
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Cell.parse("source-agent-kill@Precopy/cold"))
        .hasMessageContaining("no cell");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> Cell.parse("source-agent-kill"))
        .hasMessageContaining("FAULT@PHASE/STRATEGY");
  }
}
