package dev.ferry.cli.chaos;

import static dev.ferry.api.MigrationPhase.CUTOVER;
import static dev.ferry.api.MigrationPhase.DUMPING;
import static dev.ferry.api.MigrationPhase.POSTCOPY;
import static dev.ferry.api.MigrationPhase.PRECOPY;
import static dev.ferry.api.MigrationPhase.PREPARING;
import static dev.ferry.api.MigrationPhase.RESTORING;
import static dev.ferry.api.MigrationPhase.TRANSFERRING;

import dev.ferry.api.MigrationPhase;
import java.util.List;

/**
 * A fault {@code ferry chaos} injects into a migration. Some are injected from outside when the
 * migration reaches a phase (a process killed, the link cut, a cancel); the others are set up
 * before it starts and act where they are built in (an agent-side fault, a full disk, a failing
 * hook): those have one pseudo-phase, named by {@link #WHOLE_MIGRATION}.
 */
public enum Fault {
  NONE("none", "no fault: the migration must succeed", List.of(), null),
  SOURCE_AGENT_KILL("source-agent-kill", "kill -9 of the source host's agent",
      List.of(PREPARING, PRECOPY, DUMPING, TRANSFERRING, RESTORING, CUTOVER, POSTCOPY), null),
  TARGET_AGENT_KILL("target-agent-kill", "kill -9 of the target host's agent",
      List.of(PREPARING, PRECOPY, DUMPING, TRANSFERRING, RESTORING, CUTOVER, POSTCOPY), null),
  COORDINATOR_KILL("coordinator-kill", "kill -9 of the process driving the migration (the coordinator)",
      List.of(PREPARING, PRECOPY, DUMPING, TRANSFERRING, RESTORING, CUTOVER, POSTCOPY), null),
  // CRIU runs as runc's child with its options over RPC: the first process found whose command
  // line names CRIU and the host's directory is runc itself, so this kills runc, and its CRIU is
  // left to end the dump alone
  SOURCE_CRIU_KILL("source-criu-kill", "kill -9 of runc checkpointing (its CRIU left alone) on the source while it dumps",
      List.of(DUMPING), null),
  TARGET_CRIU_KILL("target-criu-kill", "kill -9 of CRIU on the target while it restores", List.of(RESTORING), null),
  LINK_DOWN("link-down", "the target's link down for 20 s (longer than a transfer waits to resume)",
      List.of(PRECOPY, TRANSFERRING, RESTORING, CUTOVER), null),
  LINK_FLAP("link-flap", "the target's link down for 7 s (a transfer resumes after it)",
      List.of(PRECOPY, TRANSFERRING), null),
  PACKET_LOSS("packet-loss", "3% of the target host's TCP packets dropped, both ways, for the whole migration"
      + " (tc netem is not in this kernel: iptables' statistic match)", List.of(), null),
  CORRUPT_IN_TRANSIT("corrupt-in-transit", "one byte of the frozen round's images flipped in transit", List.of(),
      "corrupt-image-in-transit"),
  CONNECTION_RESET("connection-reset", "the frozen round's connection reset after 4 MiB", List.of(),
      "transfer-connection-drop"),
  TRUNCATED_IMAGE("truncated-image", "the largest image cut to half on the target after it arrived: the restore fails",
      List.of(), "truncate-received-image"),
  TARGET_DISK_FULL("target-disk-full", "the target's migration directory a 4 MiB tmpfs: the transfer runs out of space",
      List.of(), null),
  PRE_HOOK_FAILS("pre-hook-fails", "the pre-migration hook exits 1", List.of(), null),
  PRE_HOOK_HANGS("pre-hook-hangs", "the pre-migration hook never answers (2 s timeout)", List.of(), null),
  CANCEL_AT_COMMIT("cancel-at-commit", "ferry migrate cancel as the migration reaches its commit point",
      List.of(CUTOVER), null);

  /** The phase of faults set up before the migration starts and acting throughout. */
  public static final String WHOLE_MIGRATION = "whole";

  public final String id;
  public final String description;
  /** Phases at which the fault is injected from outside; empty: set up before, acts throughout. */
  public final List<MigrationPhase> phases;
  /** The agent-side fault ({@code --inject-fault}) that implements it, or null. */
  public final String agentFault;

  Fault(String id, String description, List<MigrationPhase> phases, String agentFault) {
    this.id = id;
    this.description = description;
    this.phases = phases;
    this.agentFault = agentFault;
  }

  /** Whether the fault is injected when the migration reaches a phase (rather than set up before it). */
  public boolean timed() {
    return !phases.isEmpty();
  }

  public static Fault byId(String id) {
    for (Fault f : values()) {
      if (f.id.equals(id)) {
        return f;
      }
    }
    throw new IllegalArgumentException("unknown fault '" + id + "'; known: "
        + java.util.Arrays.stream(values()).map(f -> f.id).toList());
  }
}
