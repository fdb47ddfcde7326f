package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.ferry.api.Json;
import dev.ferry.cli.chaos.CellResult;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Cells of the fault matrix that once lost the pod, now part of the tests: a process killed
 * while the memory of a pod restored on the target still fills in, or while a post-copy restore
 * is rolled back.
 * <ul>
 *   <li>the target agent during pre-copy's memory fill: the page server the pod's memory comes
 *       through lived in the agent (now in the host's page daemon, which outlives it);
 *   <li>the source agent during hybrid's post-copy: its page pump was the only way to the
 *       frozen tree's pages (now a restarted agent pumps again, the target waiting for it);
 *   <li>the coordinator right before a post-copy commit: the rollback killed the target's page
 *       client, whose orderly close CRIU took for the end of the dump, killing the source's tree
 *       (now killed with a reset, the dump fails and hands the tree back);
 *   <li>the link between the hosts cut for 20 s while hybrid's pump fills the restored pod: the
 *       target gave up on the pump after 15 s of silence (now the pump connects again).
 * </ul>
 */
class ChaosAfterCommitIT {
  @TempDir Path tmp;

  @Test
  void killsWhileTheRestoredPodsMemoryFillsInKeepTheInvariants() throws Exception {
    TestLab.assumeHostReady();
    TestLab.assumeUserfaultfd("lazy restores are");
    Path json = tmp.resolve("chaos.json");
    TestLab.CliResult r = TestLab.runCli("chaos",
        "--cell", "target-agent-kill@Postcopy/precopy",
        "--cell", "source-agent-kill@Postcopy/hybrid",
        "--cell", "coordinator-kill@Cutover/postcopy",
        "--cell", "link-down@Cutover/hybrid",
        "--json", json.toString());
    List<CellResult> cells = Json.MAPPER.readValue(json.toFile(), new TypeReference<List<CellResult>>() {});
    assertThat(cells).hasSize(4);
    assertThat(cells).allSatisfy(c -> {
      assertThat(c.violations()).as(c.fault() + " @ " + c.phase() + " / " + c.strategy()).isEmpty();
      assertThat(c.invariantsHeld()).isTrue();
      assertThat(c.injected()).as(c.fault() + " struck").isTrue();
      assertThat(c.writesAcked()).as("the client wrote during " + c.fault()).isGreaterThan(100);
    });
    assertThat(cells).filteredOn(c -> c.fault().endsWith("agent-kill") || c.fault().equals("link-down"))
        .allSatisfy(c -> assertThat(c.outcome()).as("past the commit point the move is finished").isEqualTo("migrated"));
    assertThat(r.code()).as(r.out()).isZero();
    TestLab.assertNothingLeft("xchaos");
  }
}
