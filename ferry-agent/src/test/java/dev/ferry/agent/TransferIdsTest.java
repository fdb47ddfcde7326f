package dev.ferry.agent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.transfer.ParallelSender;
import org.junit.jupiter.api.Test;

/** The target tells a transfer's migration, its send and its group of streams from the id it announces. */
class TransferIdsTest {
  private static final String M = "m-20261128-202301-8410";

  @Test
  void oneStream() {
    assertThat(TargetRole.migrationOf(M)).isEqualTo(M);
    assertThat(TargetRole.migrationOf(M + TargetRole.PRESYNC)).isEqualTo(M);
    assertThat(TargetRole.sendOf(M + TargetRole.PRESYNC)).isEqualTo(M + TargetRole.PRESYNC);
    assertThat(TargetRole.groupOf(M)).isNull();
    assertThat(TargetRole.groupOf(M + TargetRole.PRESYNC)).isNull();
  }

  @Test
  void streamsOfOneSendShareAGroupAndASecondSendIsAnotherGroup() {
    String lane = ParallelSender.laneId(M + "@k3x9", 1, 2);
    assertThat(lane).isEqualTo(M + "@k3x9#1/2");
    assertThat(TargetRole.migrationOf(lane)).isEqualTo(M);
    assertThat(TargetRole.sendOf(lane)).isEqualTo(M);
    assertThat(TargetRole.groupOf(lane)).isEqualTo(M + "@k3x9")
        .isEqualTo(TargetRole.groupOf(ParallelSender.laneId(M + "@k3x9", 0, 2)))
        .isNotEqualTo(TargetRole.groupOf(ParallelSender.laneId(M + "@k3xa", 0, 2)));
    String presync = ParallelSender.laneId(M + TargetRole.PRESYNC + "@1", 0, 3);
    assertThat(TargetRole.migrationOf(presync)).isEqualTo(M);
    assertThat(TargetRole.sendOf(presync)).isEqualTo(M + TargetRole.PRESYNC);
  }
}
