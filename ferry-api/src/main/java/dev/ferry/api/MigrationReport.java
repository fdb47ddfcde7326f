package dev.ferry.api;

import java.util.ArrayList;
import java.util.List;

/**
 * The migration report contract of DESIGN.md: tools and checks read these names, keep them.
 * Mutable on purpose: the coordinator and the demo fill it in as they learn things.
 */
public class MigrationReport {
  public String migrationId;
  /** "migrated", "rolled-back" or "failed". */
  public String outcome;
  /** The strategy that ran: "cold" or "postcopy". */
  public String strategy;
  /** What was asked for: "auto", "cold" or "postcopy". */
  public String strategyRequested;
  /** Why this strategy (auto), in words. */
  public String strategyReason;
  /** Frozen window predicted before the migration; compare with {@link #frozenMs}. */
  public Long predictedFrozenMs;
  /** The freeze budget given (auto), or null. */
  public Long maxFreezeMs;
  /** Resident memory of the pod's app containers when the migration began. */
  public Long podMemoryBytes;
  public String runtime;
  /**
   * How the pod's images, memory and identity crossed between the hosts: "mutual TLS" (both
   * agents have the lab's certificates) or "plain TCP" (in clear).
   */
  public String transport;
  public String pod;
  public String sourceHost;
  public String targetHost;
  public String ipBefore;
  public String ipAfter;
  public String uidBefore;
  public String uidAfter;
  /** Longest gap between two acknowledged client writes, as the client saw it. */
  public Long downtimeMs;
  /**
   * Source frozen until the target runs with its network open: from the freeze where the
   * source's agent says when it froze (lazy dumps), else from the checkpoint call.
   */
  public Long frozenMs;
  /** The commit after the frozen window: the target proves the pod runs and the store records the new owner. */
  public Long commitMs;
  public Long totalMs;
  /** All bytes moved between the hosts: pre-copy rounds and the frozen round. */
  public Long bytesTransferred;
  /** Bytes moved while the pod was frozen. */
  public Long frozenBytesTransferred;
  /** Times a transfer's connection broke (reset, or cut by the stall watchdog) and was resumed from the last verified chunk; absent when none did. */
  public Integer transferResumes;
  public int precopyRounds;
  /** Bytes sent by each memory pre-copy round, in order. */
  public List<Long> precopyRoundBytes = new ArrayList<>();
  /** Why the pre-copy rounds stopped (converged, stopped shrinking, round limit). */
  public String precopyStopReason;
  /** Set when the freeze budget was predicted to be missed: why, and what was done. */
  public String budgetMiss;
  /** CPU cap (percent of a CPU) put on the pod during pre-copy to slow its writes, if any. */
  public Integer cpuThrottlePercent;
  /** How fast the pod changed its memory during pre-copy, measured by the last round. */
  public Long dirtyBytesPerSecond;
  /** Pre-copy: pages of the frozen dump sent while frozen, and pages the target already held. */
  public Long frozenPagesSent;
  public Long frozenPagesKept;
  public Long writesAcked;
  public Long writesLost;
  /** True when the client's single connection kept working through the migration. */
  public Boolean tcpConnectionPreserved;
  /** Why the client's connection was not kept, when the runtime cannot keep it (runsc); null otherwise. */
  public String tcpConnectionNote;
  /** Times the client had to open a new connection (its old one was reset or stalled); null when none. */
  public Integer clientReconnects;
  /** Longest time from the client losing its connection to its first write acknowledged on the new one. */
  public Long clientReconnectMs;
  /** Version of the runtime (runsc's "0.0~20240729.0"; runc's is in {@link #runtime}). */
  public String runtimeVersion;
  public List<PhaseTiming> phases = new ArrayList<>();
  /** Post-copy: pages fetched by the target after the pod started there (hybrid: pages that had changed). */
  public Long postcopyPages;
  /** Hybrid: pages of the post-copy phase the target already held from pre-copy rounds. */
  public Long postcopyPagesKept;
  /**
   * Hybrid: pages the pump sent first, unasked, as the last pre-copy round's changed set (what the
   * app wrote lately); -1 when that set was too large to send first.
   */
  public Long postcopyPagesSentFirst;
  /**
   * Post-copy: how long the pod depended on its source after the restore began (until the
   * last page arrived); a source failure in this window loses the pod.
   */
  public Long atRiskMs;
  /**
   * How the target restored memory: "eager" (all pages before the pod runs), "lazy-local"
   * (from local images, copied in behind the running pod) or "lazy-remote" (post-copy).
   */
  public String restoreMode;
  /** Lazy restores: from the restore's start until every page was in place. */
  public Long memoryFillMs;
  /** Why the migration failed or was rolled back, in words; null on success. */
  public String error;
  /** When the source was frozen (see {@link #frozenMs}) and when the target's network opened, epoch ms. */
  public Long freezeStartEpochMs;
  public Long networkOpenEpochMs;
  /**
   * The client's longest gap against the migration (demo and benchmark): when its last reply
   * before the gap came after the freeze began, and its first reply after the target's network
   * opened, in ms.
   */
  public java.util.Map<String, Long> downtimeBreakdownMs = new java.util.LinkedHashMap<>();
  /** Where the frozen time went: checkpoint, transfer, restore, ... in ms. */
  public java.util.Map<String, Long> frozenBreakdownMs = new java.util.LinkedHashMap<>();
  /** Every hook call, in order: hook, phase, result, ms, answer. */
  public List<HookCall> hooks = new ArrayList<>();
  /** Service VIP the client used (demo with --vip), or null. */
  public String vip;
  /** Longest gap between two acknowledged writes of a client that talks to the pod through the VIP. */
  public Long vipGapMs;
  /**
   * Most hosts seen answering ARP for the pod's IP at one sample (the prober's, >= 100 Hz): must
   * be 1. Null when nothing probed.
   */
  public Integer ipOwnersMax;
  /**
   * Fewest hosts seen answering at one sample (a sample re-asks every ms of its slot while
   * nobody answers): 1 when the IP always had an owner, 0 when a whole sample went unanswered.
   */
  public Integer ipOwnersMin;
  /** Samples the prober took, and at what rate. */
  public Long ipOwnerSamples;
  public Double ipOwnerHz;
  /** Hosts that answered for the pod's IP, in the order they did (each change once). */
  public List<String> ipOwnerSequence = new ArrayList<>();
  /** Longest run of samples with no host answering (the hand-over), in ms. */
  public Long ipUnownedMaxMs;
  /**
   * From the source's link going down to the target's coming up, in microseconds, by the two
   * agents' clocks: how long nobody answered for the pod's IP in the hand-over.
   */
  public Long identityUnansweredMicros;
}
