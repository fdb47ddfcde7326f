package dev.ferry.migration;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.agent.AgentClient;
import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.api.PhaseTiming;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One migration as a table of steps, each with its undo. The order follows the talk's engine
 * flow: placeholder on the target, pre-copy of the pod's files, freeze and dump, transfer, the
 * source lets go of the identity, the target takes it behind a network lock, restore, then
 * the commit point (target proven running). Before the commit point any failure rolls back
 * and the source resumes; after it, only forward.
 *
 * <p>Strategies: "cold" dumps everything while frozen; "postcopy" dumps all but the memory
 * pages, restores at once and lets the target fetch the pages from the still-frozen source
 * afterwards (the pod is at risk until the last page arrived: if the source dies then, the
 * pod is lost; post-copy is opt-in for that reason).
 */
final class MigrationRun {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationRun.class);

  /** One step: what it does and how to undo it. Both must be idempotent. */
  record Step(String name, MigrationPhase phase, Action run, Action undo) {}

  @FunctionalInterface
  interface Action {
    void apply() throws Exception;
  }

  private final String id;
  private final PodRecord pod;
  private final MigrationOptions options;
  private final AgentClient source;
  private final AgentClient target;
  private final MigrationStore store;
  private final ProgressListener progress;
  private final MigrationReport report;
  private final long t0;
  private long frozenStart;
  private long presyncBytes;
  private String pageServer;
  /** Where the target agent receives images; asked for once, not inside the frozen window. */
  private String targetData;
  private long restoreStart;
  /**
   * Restore lazily from the target's local images (cold, pre-copy): the tree runs as soon as
   * it is rebuilt and its memory is copied in behind it, out of the frozen window.
   */
  private boolean lazyLocal;
  /**
   * Pre-copy and hybrid with userfaultfd on the target: the final dump leaves memory in the
   * frozen tree, and Ferry's page pump moves only what changed since the rounds.
   */
  private boolean pumped;
  /** Where the target's page store takes the pump's stream. */
  private String pumpAddress;
  /** Why "--on-budget-miss throttle" did not throttle (for the report), or "". */
  private String throttleWhyNot = "";
  private long pumpStartedAt;
  private MigrationPhase currentPhase;
  private long phaseStart;
  /** Hooks, reservation, IPAM and VIP steps (the management plane). */
  private HandoverSteps handover;
  /** The placeholder's temporary address while it waits. */
  private String placeholderIp;

  MigrationRun(String id, PodRecord pod, MigrationOptions options, AgentClient source, AgentClient target,
      MigrationStore store, ProgressListener progress, MigrationReport report, long t0) {
    this.id = id;
    this.pod = pod;
    this.options = options;
    this.source = source;
    this.target = target;
    this.store = store;
    this.progress = progress;
    this.report = report;
    this.t0 = t0;
  }

  /** Sets the management-plane steps (hooks, reservation, IPAM, VIP); required before running. */
  MigrationRun handover(HandoverSteps h) {
    this.handover = h;
    return this;
  }

  List<Step> steps() {
    Action nothing = () -> {};
    List<Step> steps = new ArrayList<>();
    steps.add(new Step("pre-hook", MigrationPhase.PREPARING, handover::preHook, handover::undoPreHook));
    steps.add(new Step("reserve-target", MigrationPhase.PREPARING, () -> placeholderIp = handover.reserveTarget(),
        handover::releaseTarget));
    steps.add(new Step("prepare-target", MigrationPhase.PREPARING, this::prepareTarget, this::abortTarget));
    steps.add(new Step("presync", MigrationPhase.PRECOPY, this::presync, nothing));
    if (memoryPrecopy()) {
      steps.add(new Step("precopy-memory", MigrationPhase.PRECOPY, this::precopyMemory, this::forgetPrecopy));
      steps.add(new Step("open-pagestore", MigrationPhase.PRECOPY, this::openPageStore, nothing));
    }
    // before the freeze: it runs ~30-70 ms of iptables and ip here, which inside the frozen window
    // (beside the transfer) held the target agent from taking the transfer in; its undo is the
    // target's abort
    steps.add(new Step("stage-identity", MigrationPhase.PRECOPY, this::stageIdentity, nothing));
    steps.add(new Step(postCopy() ? "checkpoint-lazy" : "checkpoint", MigrationPhase.DUMPING, this::checkpoint,
        this::resumeSourceWithDisks));
    if (handover.hasDisks()) {
      steps.add(new Step("detach-disks", MigrationPhase.DUMPING, handover::detachDisksFromSource,
          handover::attachDisksToSource));
    }
    steps.add(new Step("transfer", MigrationPhase.TRANSFERRING, this::transfer, nothing));
    if (memoryPrecopy()) {
      // runs during the transfer (see there); listed for its place in the record and the rollback
      steps.add(new Step("pump", MigrationPhase.TRANSFERRING, this::pump, nothing));
    }
    // before the identity, so that nothing falls between its release and its take
    if (handover.hasDisks()) {
      steps.add(new Step("attach-disks", MigrationPhase.RESTORING, handover::attachDisksToTarget,
          handover::detachDisksFromTarget));
    }
    // runs while the identity is handed over (see there); undone last, once it has ended
    steps.add(new Step("prepare-restore", MigrationPhase.RESTORING, this::prepareRestore, this::undoPrepareRestore));
    // undone after the target copy is gone (take-identity's undo), which then never writes to a
    // disk detached from it: the target lets go of the disks before the source takes them back
    steps.add(new Step("release-identity", MigrationPhase.RESTORING, this::handOverIdentity, () -> {
      if (handover.hasDisks()) {
        handover.detachDisksFromTarget();
      }
      resumeSourceWithDisks();
      handover.identityBackOnSource();
    }));
    steps.add(new Step("take-identity", MigrationPhase.RESTORING, this::recordIdentityTaken, () -> {
      abortTarget();
      handover.identityGivenUpByTarget();
    }));
    // before the restore: were it to fail after the target served a client, a rollback would lose acknowledged writes
    if (handover.hasServices()) {
      steps.add(new Step("switch-vip", MigrationPhase.RESTORING, handover::switchVip, handover::switchVipBack));
    }
    steps.add(new Step(postCopy() ? "restore-lazy" : "restore", MigrationPhase.RESTORING, this::restore,
        postCopy() ? this::abortLazyRestore : this::abortTarget));
    steps.add(new Step("commit", MigrationPhase.CUTOVER, this::commit, nothing));
    return List.copyOf(steps);
  }

  /** Whether memory is copied in rounds while the pod runs ("precopy", and "hybrid" before its post-copy). */
  boolean memoryPrecopy() {
    return "precopy".equals(options.strategy()) || hybrid();
  }

  /** Pre-copy rounds, then restore at once while the rest of the memory follows. */
  boolean hybrid() {
    return "hybrid".equals(options.strategy());
  }

  /** Whether the dump leaves memory in the frozen tree (post-copy, and pre-copy through the page pump). */
  private boolean lazyCheckpoint() {
    return postCopy() || pumped;
  }

  /** Runs every step; throws the first failure after recording which step failed. */
  void runForward() throws Exception {
    for (Step s : steps()) {
      if (store.cancelRequested(id)) {
        throw new StepFailedException(s.name(), s.phase(), new CancelledException());
      }
      enterPhase(s.phase(), s.name());
      store.stepStatus(id, s.name(), "started");
      long started = now();
      try {
        s.run().apply();
        if (frozenStart > 0) {
          LOG.debug("step {} took {} ms, done {} ms into the freeze", s.name(), now() - started, now() - frozenStart);
        }
      } catch (StepFailedException e) {
        throw e; // a step run alongside (the identity hand-over) failed
      } catch (FinishLaterException e) {
        throw e; // committed: never rolled back
      } catch (Exception e) {
        if (committed) {
          throw new FinishLaterException("committed, then " + s.name() + " failed: " + e.getMessage(), e);
        }
        throw new StepFailedException(s.name(), s.phase(), e);
      }
      store.stepStatus(id, s.name(), "done");
    }
    endPhase();
  }

  /** What a rollback achieved. */
  record RollbackResult(boolean sourceResumed, List<String> problems) {}

  /**
   * Undoes, newest first, every step that was started (even if it did not finish: it may
   * have half-happened). The source is resumed only once the target let go of the pod's
   * identity, or never took it: two pods must never answer for one IP.
   */
  RollbackResult rollback() {
    enterPhase(MigrationPhase.ROLLING_BACK, "undoing");
    awaitPumpQuietly(); // its step's record must be final before the undoing reads it
    Map<String, String> done = store.steps(id);
    List<Step> steps = new ArrayList<>(steps());
    java.util.Collections.reverse(steps);
    List<String> problems = new ArrayList<>();
    boolean targetMayHoldIdentity = false;
    boolean sourceResumed = true;
    for (Step s : steps) {
      String st = done.get(s.name());
      if (st == null || st.equals("undone")) {
        continue;
      }
      boolean resumesSource = s.name().equals("release-identity") || s.name().startsWith("checkpoint");
      if (resumesSource && targetMayHoldIdentity) {
        problems.add("source not resumed: target " + target.host() + " did not confirm it let go of "
            + pod.spec().identity().ip());
        sourceResumed = false;
        break;
      }
      try {
        s.undo().apply();
        store.stepStatus(id, s.name(), "undone");
      } catch (Exception e) {
        LOG.warn("undo of {} failed: {}", s.name(), e.getMessage());
        problems.add("undo of " + s.name() + " on " + (resumesSource ? source.host() : target.host()) + ": " + e.getMessage());
        if (s.name().equals("take-identity") || s.name().startsWith("restore")) {
          targetMayHoldIdentity = true;
        }
        if (resumesSource) {
          sourceResumed = false;
        }
      }
    }
    if (sourceResumed && done.containsKey("checkpoint")) {
      sourceResumed = sourceRuns();
      if (!sourceResumed) {
        problems.add("pod " + pod.name() + " is not running on " + source.host() + " after the rollback");
      }
    }
    endPhase();
    if (frozenStart > 0 && report.frozenMs == null) {
      report.frozenMs = now() - frozenStart;
    }
    return new RollbackResult(sourceResumed, problems);
  }

  private boolean sourceRuns() {
    try {
      return source.pod(pod.name()).running();
    } catch (RuntimeException e) {
      return false;
    }
  }

  private void prepareTarget() {
    Map<String, Object> body = new java.util.HashMap<>(Map.of("spec", pod.spec(), "faults", options.faults()));
    if (placeholderIp != null) {
      body.put("tempIp", placeholderIp);
      body.put("tempMac", Coordinator.macFor(placeholderIp));
    }
    target.step(id, "target", "prepare", body);
    boolean uffd = Boolean.TRUE.equals(target.info().capabilities().get("userfaultfd"));
    boolean eager = "1".equals(System.getenv("FERRY_EAGER_RESTORE"));
    pumped = memoryPrecopy() && uffd && pod.spec().containers().size() == 1 && (hybrid() || !eager);
    // runsc restores a whole sandbox from its image: no lazy restore of any kind
    lazyLocal = !postCopy() && !pumped && !eager && uffd && !pod.spec().runsc();
  }

  /** Copies the pod's files ahead while it still runs; the frozen round sends only changes. */
  private void presync() throws Exception {
    String dataAddress = targetData();
    JsonNode r = sendWatchingForCancel(() -> source.step(id, "source", "presync",
        Map.of("pod", pod.name(), "target", dataAddress, "bandwidth", options.bandwidthMBps() * 1_000_000)), null);
    presyncBytes = r.path("bytes").asLong();
    countResumes(r);
  }

  /** Adds the resumes of a transfer step (connections that broke and were resumed) to the report. */
  private void countResumes(JsonNode r) {
    int n = r.path("resumes").asInt();
    if (n > 0) {
      report.transferResumes = (report.transferResumes == null ? 0 : report.transferResumes) + n;
    }
  }

  /**
   * Memory pre-copy: rounds while the pod runs, each shipping the pages changed since the
   * previous one, until what is left is small, stops shrinking, or the round limit is reached.
   */
  private void precopyMemory() throws Exception {
    String dataAddress = targetData();
    PrecopyPolicy policy = new PrecopyPolicy(podMemoryBytes(), options.maxFreezeMs(), pumped, hybrid());
    long lastStart = 0;
    int throttle = 0;
    try {
      for (int round = 1; ; round++) {
        int k = round;
        long start = now();
        JsonNode r = sendWatchingForCancel(() -> source.step(id, "source", "memround", Map.of("pod", pod.name(),
            "target", dataAddress, "bandwidth", options.bandwidthMBps() * 1_000_000, "round", k)), progress);
        long bytes = r.path("bytes").asLong();
        countResumes(r);
        long changed = r.path("changedPages").asLong() * 4096;
        long ms = Math.max(1, now() - start);
        // pages changed since the previous round, over the time since it began
        double dirtyRate = round == 1 ? 0 : changed / Math.max(1e-3, (start - lastStart) / 1000.0);
        lastStart = start;
        report.precopyRounds = round;
        report.precopyRoundBytes.add(bytes);
        report.bytesTransferred = presyncBytes + report.precopyRoundBytes.stream().mapToLong(Long::longValue).sum();
        PrecopyPolicy.Decision d = policy.afterRound(round, changed, bytes * 1000.0 / ms, dirtyRate);
        report.dirtyBytesPerSecond = Math.round(dirtyRate);
        report.predictedFrozenMs = d.predictedFrozenMs();
        progress.round(id, new ProgressListener.Round(round, bytes, bytes * 1000.0 / ms, dirtyRate, d.predictedFrozenMs()));
        LOG.info("pre-copy round {}: {} bytes in {} ms, {} bytes changed since the previous round; {}", round, bytes, ms,
            changed, d.reason());
        if (!d.stop()) {
          continue;
        }
        if (d.overBudget()) {
          int next = nextThrottle(throttle, round);
          if (next > 0) {
            throttle = next;
            source.step(id, "source", "throttle", Map.of("pod", pod.name(), "percent", throttle));
            report.cpuThrottlePercent = throttle;
            progress.phase(id, MigrationPhase.PRECOPY, d.reason() + "; pod's CPU capped at " + throttle
                + "% to slow its writes (--on-budget-miss throttle)");
            policy.restart();
            continue;
          }
          if ("abort".equals(options.onBudgetMiss())) {
            throw new BudgetMissException(d.reason() + throttleWhyNot + "; refused before freezing (--on-budget-miss abort): the pod keeps"
                + " running on its source");
          }
          report.budgetMiss = d.reason() + throttleWhyNot + "; going ahead (--on-budget-miss " + options.onBudgetMiss()
              + ")";
          progress.phase(id, MigrationPhase.PRECOPY, report.budgetMiss);
          LOG.warn("{}", report.budgetMiss);
        }
        report.precopyStopReason = d.reason();
        return;
      }
    } finally {
      if (throttle > 0) {
        // the pod freezes next; it must not carry the cap to the target, nor keep it on a rollback
        source.step(id, "source", "throttle", Map.of("pod", pod.name(), "percent", 0));
      }
    }
  }

  /**
   * Under "--on-budget-miss throttle": the next CPU cap (50, 25, then 10 % of a CPU), or 0 when
   * throttling cannot help: already at the floor, or the budget is missed even with no writes
   * at all (the pod's memory alone takes longer to move than the budget).
   */
  private int nextThrottle(int current, int round) {
    if (!"throttle".equals(options.onBudgetMiss()) || current == 10 || round > PrecopyPolicy.MAX_ROUNDS + 6) {
      return 0;
    }
    long floor = hybrid() ? StrategyChooser.predictPostcopyMs(podMemoryBytes())
        : pumped ? StrategyChooser.predictPumpedPrecopyMs(podMemoryBytes(), 0)
        : StrategyChooser.predictPrecopyMs(podMemoryBytes(), 0);
    if (floor > options.maxFreezeMs()) {
      throttleWhyNot = "; the budget cannot be kept even without writes (" + floor + " ms predicted for the memory"
          + " alone), so capping the CPU would not help";
      return 0;
    }
    return current == 0 ? 50 : current == 50 ? 25 : 10;
  }

  /** The freeze budget cannot be kept and the policy says abort. */
  static final class BudgetMissException extends RuntimeException {
    BudgetMissException(String message) {
      super(message);
    }
  }

  private long podMemoryBytes() {
    return report.podMemoryBytes == null ? 0 : report.podMemoryBytes;
  }

  private void forgetPrecopy() {
    source.step(id, "source", "forget", Map.of("pod", pod.name()));
  }

  private String targetData() {
    if (targetData == null) {
      targetData = target.info().address();
    }
    return targetData;
  }

  private void abortTarget() {
    target.step(id, "target", "abort", Map.of("pod", pod.name()));
  }

  /**
   * Removing a post-copy restore kills the target's page client, which makes the source's lazy
   * dump fail and CRIU thaw the source's tree there and then: its TCP sockets leave repair mode
   * first, or the thawed app would find its client's connection dead.
   */
  private void abortLazyRestore() {
    try {
      source.step(id, "source", "release-sockets", Map.of("pod", pod.name()));
    } catch (RuntimeException e) {
      LOG.warn("the source's sockets were not taken out of repair mode before its dump ends: {}", e.getMessage());
    }
    abortTarget();
  }

  /** Post-copy straight from CRIU's page server on the source (no pre-copy rounds). */
  boolean postCopy() {
    return "postcopy".equals(options.strategy());
  }

  private void checkpoint() {
    frozenStart = now(); // until the agent says when it froze the pod (a rollback counts from here)
    report.freezeStartEpochMs = frozenStart;
    // (the target's CRIU dials the source's page server in post-copy only; the pump reads the frozen tree)
    JsonNode r = source.step(id, "source", "checkpoint", Map.of("pod", pod.name(), "lazy", lazyCheckpoint(), "target",
        targetData(), "servesTarget", postCopy(), "bandwidth", options.bandwidthMBps() * 1_000_000));
    // a lazy dump's agent did work of its own before it froze the pod (the call's own transit
    // stays counted: it is not measured)
    frozenStart += r.path("beforeFreezeMs").asLong(0);
    report.freezeStartEpochMs = frozenStart;
    pageServer = r.path("pageServer").asText(null);
    report.frozenBreakdownMs.put("checkpoint", r.path("checkpointMs").asLong(now() - frozenStart));
    putLaps("checkpoint", r);
  }

  /**
   * Before the freeze: the target indexes what the rounds delivered and opens the store the
   * page pump fills (indexing a GiB of rounds takes ~0.2 s: not inside the frozen window).
   */
  private void openPageStore() {
    if (pumped) {
      pumpAddress = target.step(id, "target", "pagestore", Map.of("pod", pod.name())).path("pumpAddress").asText();
    }
  }

  /**
   * Pre-copy: moves the frozen memory through the page pump and waits until the target holds
   * every page, so that the pod never depends on its source after the restore. Hybrid only
   * starts it and restores at once.
   */
  private void pump() {
    if (!pumped || pumpAlongside != null) {
      return; // pre-copy without userfaultfd on the target: the recipes went with the images; or started with the transfer
    }
    countPumped(startPump());
  }

  /** What {@link #startPump} did, for the report: the source's answer and how long it took. */
  private record Pumped(JsonNode answer, long ms) {}

  /** Runs the pump (see {@link #pump}); leaves the report alone, as it may run beside the transfer. */
  private Pumped startPump() {
    long start = now();
    if (hybrid()) {
      // the pages follow the pod; it runs as soon as it is restored (CRIU's restore itself
      // already faults on a few pages, so the pump must be running by then)
      pumpStartedAt = start;
      source.step(id, "source", "pump", Map.of("pod", pod.name(), "target", pumpAddress, "wait", false, "hold", true,
          "bandwidth", options.bandwidthMBps() * 1_000_000));
      return new Pumped(null, now() - start);
    }
    JsonNode r = source.step(id, "source", "pump", Map.of("pod", pod.name(), "target", pumpAddress, "wait", true,
        "bandwidth", options.bandwidthMBps() * 1_000_000));
    return new Pumped(r, now() - start);
  }

  private void countPumped(Pumped p) {
    if (p.answer() == null) {
      report.frozenBreakdownMs.put("pumpStart", p.ms());
      return;
    }
    JsonNode r = p.answer();
    report.frozenPagesSent = r.path("literalPages").asLong();
    report.frozenPagesKept = r.path("keptPages").asLong();
    report.frozenBytesTransferred = (report.frozenBytesTransferred == null ? 0 : report.frozenBytesTransferred)
        + r.path("bytes").asLong();
    report.bytesTransferred = (report.bytesTransferred == null ? 0 : report.bytesTransferred) + r.path("bytes").asLong();
    report.frozenBreakdownMs.put("pumpPages", p.ms());
  }

  /** The source resumes with its disks attached again (a cold source restores from images that use them). */
  private void resumeSourceWithDisks() {
    if (handover.hasDisks()) {
      handover.attachDisksToSource();
    }
    resumeSource();
  }

  private void resumeSource() {
    source.step(id, "source", "resume", Map.of("pod", pod.name()));
  }

  /**
   * Sends the frozen round (the page pump starting beside it, when there is one). The identity
   * hand-over comes only after the transfer: a target that dies mid-transfer must not leave the
   * identity in doubt, or the source could not be resumed. The pump is not waited for here but
   * just before the restore ({@link #awaitPump}): the target readies its restore and the
   * identity is handed over meanwhile (the pump's start, with its two TLS handshakes, often ended
   * after the images had arrived, and held both back).
   */
  private void transfer() throws Exception {
    if (pumped) {
      // the pump reads the frozen memory and the source's own images only: it need not wait
      // for the images to reach the target (pre-copy's frozen pages, hybrid's start)
      pumpAlongside = CompletableFuture.supplyAsync(() -> {
        Pumped[] p = {null};
        recorded("pump", () -> p[0] = startPump());
        return p[0];
      });
    }
    try {
      sendFrozenRound();
    } catch (Exception e) {
      awaitPumpQuietly(); // a rollback must know what it did; the transfer's failure is the one to report
      throw e;
    }
  }

  /** The page pump started beside the frozen round ({@link #transfer}); null when there is none. */
  private volatile CompletableFuture<Pumped> pumpAlongside;

  /**
   * Waits for the pump started beside the transfer and adds its figures to the report. Before
   * the restore: a hybrid restore faults on pages at once, and a pre-copy restore needs every
   * page on the target. A failed pump fails its own step (recorded as such).
   */
  private void awaitPump() throws Exception {
    CompletableFuture<Pumped> f = pumpAlongside;
    if (f == null || pumpCounted) {
      return;
    }
    try {
      countPumped(f.join());
      pumpCounted = true;
    } catch (java.util.concurrent.CompletionException e) {
      throw e.getCause() instanceof Exception ex ? ex : e;
    }
  }

  private boolean pumpCounted;

  /** For a rollback: lets a pump started beside the transfer end first, whatever its outcome. */
  private void awaitPumpQuietly() {
    CompletableFuture<Pumped> f = pumpAlongside;
    if (f != null) {
      try {
        f.join();
      } catch (java.util.concurrent.CompletionException ignored) {
        // failed too: the same cause, most likely
      }
    }
  }

  /** Runs one step of the table out of order, recording it like {@link #runForward} does. */
  private void recorded(String step, Action a) {
    store.stepStatus(id, step, "started");
    try {
      a.apply();
    } catch (Exception e) {
      MigrationPhase phase = steps().stream().filter(s -> s.name().equals(step)).map(Step::phase).findFirst()
          .orElse(MigrationPhase.RESTORING);
      throw new java.util.concurrent.CompletionException(new StepFailedException(step, phase, e));
    }
    store.stepStatus(id, step, "done");
  }

  private void sendFrozenRound() throws Exception {
    long start = now();
    String dataAddress = targetData();
    JsonNode r = sendWatchingForCancel(() -> source.step(id, "source", "send", Map.of("pod", pod.name(), "target",
        dataAddress, "faults", options.faults(), "bandwidth", options.bandwidthMBps() * 1_000_000)), progress);
    long earlier = presyncBytes + report.precopyRoundBytes.stream().mapToLong(Long::longValue).sum();
    report.bytesTransferred = earlier + r.path("bytes").asLong();
    report.frozenBytesTransferred = r.path("bytes").asLong();
    countResumes(r);
    if (r.has("recipeMs") && memoryPrecopy()) {
      report.frozenBreakdownMs.put("precopyRecipe", r.path("recipeMs").asLong());
      report.frozenPagesSent = r.path("literalPages").asLong();
      report.frozenPagesKept = r.path("keptPages").asLong();
    }
    progress.transfer(id, report.frozenBytesTransferred,
        report.frozenBytesTransferred / Math.max(1e-3, (now() - start) / 1000.0));
    report.frozenBreakdownMs.put("transfer", now() - start - r.path("recipeMs").asLong());
  }

  /**
   * Runs a transfer call, reporting progress every 250 ms and stopping the transfer at once
   * (the source agent closes its connection) if the migration is cancelled meanwhile.
   */
  private JsonNode sendWatchingForCancel(java.util.function.Supplier<JsonNode> call, ProgressListener listener)
      throws Exception {
    CompletableFuture<JsonNode> send = CompletableFuture.supplyAsync(call);
    boolean cancelled = false;
    while (true) {
      try {
        return send.get(250, TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        if (!cancelled && store.cancelRequested(id)) {
          cancelled = true;
          source.step(id, "source", "cancel", Map.of("pod", pod.name()));
        }
        if (listener != null) {
          try {
            JsonNode p = source.progress(id);
            listener.transfer(id, p.path("bytes").asLong(), p.path("bytesPerSecond").asDouble());
          } catch (RuntimeException ignored) {
            // progress is best effort
          }
        }
      } catch (ExecutionException e) {
        if (cancelled) {
          throw new CancelledException();
        }
        throw e.getCause() instanceof Exception ex ? ex : e;
      }
    }
  }

  /** The user cancelled the migration before its commit point. */
  static final class CancelledException extends RuntimeException {
    CancelledException() {
      super("cancelled by the user (ferry migrate cancel)");
    }
  }

  private void stageIdentity() {
    target.step(id, "target", "stage-identity", Map.of("pod", pod.name()));
  }

  /**
   * The identity hand-over, the steps release-identity and take-identity in one call: the
   * source's agent opens a connection to the target's, takes its own link down and tells the
   * target, whose staged link comes up. Nobody answers for the pod's IP in between, so nothing
   * else happens there: take-identity counts as started before the release (a rollback then has
   * the target let go first, harmless if it never took), and the IPAM follows after the take
   * ({@link #recordIdentityTaken}).
   */
  private void handOverIdentity() {
    long start = now();
    store.stepStatus(id, "take-identity", "started");
    JsonNode r = source.step(id, "source", "release", Map.of("pod", pod.name(), "handTo", targetData()));
    long downAt = r.path("downAtMicros").asLong();
    long upAt = r.path("upAtMicros").asLong();
    identityTaken = true;
    report.frozenBreakdownMs.put("handOverIdentity", now() - start);
    putLaps("handOverIdentity", r);
    if (downAt > 0 && upAt > 0) {
      // by the two agents' clocks: exact in a lab, within their synchronisation across machines
      report.identityUnansweredMicros = upAt - downAt;
    }
  }

  /** Set once the target took the identity in {@link #handOverIdentity}. */
  private boolean identityTaken;

  /**
   * The IPAM records the address's move from the source to the target in one transaction (it
   * showed the source, one owner, until now).
   */
  private void recordIdentityTaken() {
    if (!identityTaken) {
      throw new IllegalStateException("the target has not taken the pod's identity"); // the hand-over runs first
    }
    long start = now();
    handover.identityMoved();
    report.frozenBreakdownMs.put("takeIdentity.ipam", now() - start);
  }

  /** The target readying its restore, started by {@link #prepareRestore}. */
  private CompletableFuture<JsonNode> restorePrepared;

  /**
   * Starts the target readying its restore (the pod's sandbox, its bundles and images, CRIU's
   * page client where Ferry's page store serves the memory): that runs while the identity is
   * handed over, and the restore then only runs CRIU. The sandbox joins the pod's network
   * namespace, staged on the target before the freeze; it takes no address of anyone's.
   */
  private void prepareRestore() {
    Map<String, Object> body = new java.util.HashMap<>(Map.of("pod", pod.name(), "ferryPages", pumped));
    if (pumped || !postCopy()) {
      // how the restore will run, so that the target can start it ahead (post-copy from CRIU's
      // page server is named by the restore call)
      body.put("lazy", pumped || lazyLocal);
    }
    restorePrepared = CompletableFuture.supplyAsync(() -> target.step(id, "target", "prepare-restore", body));
  }

  /** The target's abort, once the readying it undoes has ended (it would race the abort). */
  private void undoPrepareRestore() {
    if (restorePrepared != null) {
      try {
        restorePrepared.get(2, TimeUnit.MINUTES);
      } catch (Exception e) {
        // failed, or hung: the abort removes what it did either way
      }
    }
    abortTarget();
  }

  private void restore() throws Exception {
    long start = now();
    restoreStart = start;
    if (pumpAlongside != null) {
      awaitPump();
      report.frozenBreakdownMs.put("restore.pumpWait", now() - start);
    }
    if (restorePrepared != null) {
      long waitFrom = now();
      JsonNode ready;
      try {
        ready = restorePrepared.get(2, TimeUnit.MINUTES);
      } catch (ExecutionException e) {
        throw e.getCause() instanceof Exception ex ? ex : e;
      }
      putLaps("prepareRestore", ready);
      report.frozenBreakdownMs.put("restore.preparedWait", now() - waitFrom);
    }
    Map<String, Object> body = new java.util.HashMap<>(Map.of("pod", pod.name()));
    if (postCopy()) {
      if (pageServer == null) {
        throw new IllegalStateException("the source's page server is unknown; cannot restore lazily");
      }
      body.put("pageServer", pageServer);
    }
    body.put("lazyLocal", lazyLocal);
    body.put("ferryPages", pumped);
    report.restoreMode = postCopy() || (pumped && hybrid()) ? "lazy-remote" : lazyLocal || pumped ? "lazy-local" : "eager";
    JsonNode r = target.step(id, "target", "restore", body);
    // the tree runs on the target, its network still locked: the commit opens it
    if (r.path("rebuildMs").asLong() > 0) {
      report.frozenBreakdownMs.put("rebuildImages", r.path("rebuildMs").asLong());
    }
    report.frozenBreakdownMs.put("restore", now() - start - r.path("rebuildMs").asLong());
    putLaps("restore", r);
  }

  /**
   * Hybrid: lets the page pump push the rest of the memory. Until the pod's network is open
   * the pump sends only the pages the restored pod asks for and those written last: pushing
   * the rest earlier took the CPUs from the commit (176 ms instead of ~40 in a 256 MiB demo
   * on 2 CPUs), inside the frozen window. Every path past the commit point calls this (the
   * commit, the recovery that finishes one, the post-copy wait); idempotent, and a source that
   * does not answer is left to the post-copy wait, which waits for it (a restarted source
   * agent pumps unheld).
   */
  private void releasePump() {
    if (!hybrid()) {
      return;
    }
    try {
      source.step(id, "source", "release-pump", Map.of("pod", pod.name()));
    } catch (RuntimeException e) {
      LOG.warn("the page pump of {} was not released: {}", id, e.getMessage());
    }
  }

  /**
   * Adds where an agent's step spent its time ({@code laps} in its answer) to the frozen
   * breakdown as {@code step.lap}; a rebuild of the pages images has an entry of its own.
   */
  private void putLaps(String step, JsonNode answer) {
    answer.path("laps").fields().forEachRemaining(lap -> {
      if (!lap.getKey().equals("rebuild")) {
        report.frozenBreakdownMs.put(step + "." + lap.getKey(), lap.getValue().asLong());
      }
    });
  }

  /**
   * The commit point: recorded durably first, then the target opens the pod's network. In that
   * order, a copy that served a client is always one the migration only goes forward with: were
   * the target to open first and fail before the record, a rollback would lose the writes it
   * acknowledged.
   *
   * @throws FinishLaterException when the target did not confirm it opened the network: the
   *     migration is committed, and the next recovery finishes it
   */
  private void commit() {
    long start = now();
    store.commit(id, pod.name(), options.targetHost());
    committed = true;
    try {
      openTarget();
    } catch (TargetCopyDiedException e) {
      takeBackCommit();
      throw e; // a step failure like any other now: rolled back
    }
    report.networkOpenEpochMs = now();
    report.frozenMs = now() - frozenStart;
    report.commitMs = now() - start;
    releasePump();
  }

  /** Whether the commit point was recorded: from there on the migration only goes forward. */
  private boolean committed;

  boolean committed() {
    return committed;
  }

  /**
   * The target's copy died after its restore and before its network opened (say its page
   * server went with a killed agent): it never served a client, so the commit can be taken back
   * and the migration rolled back to the source, which still holds the pod, frozen.
   */
  static final class TargetCopyDiedException extends RuntimeException {
    TargetCopyDiedException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** Undoes the commit record (see {@link MigrationStore#uncommit}); the caller rolls back. */
  void takeBackCommit() {
    store.uncommit(id, pod.name(), source.host(), pod.spec().memoryLimitMiB());
    committed = false;
    LOG.warn("commit of {} taken back: the target's copy died before it served anyone", id);
  }

  /** Asks the target to open the committed pod's network (idempotent), a few times. */
  void openTarget() {
    RuntimeException last = null;
    for (int attempt = 1; attempt <= 3; attempt++) {
      try {
        putLaps("commit", target.step(id, "target", "commit", Map.of("pod", pod.name())));
        return;
      } catch (AgentClient.AgentException e) {
        if (e.status() == 409 && e.getMessage().contains("after restore")) {
          throw new TargetCopyDiedException("the copy restored on " + target.host() + " died before its network"
              + " opened: " + e.getMessage(), e);
        }
        last = e;
        LOG.warn("opening the committed pod on {} failed (attempt {}): {}", target.host(), attempt, e.getMessage());
        sleep(300L * attempt);
      } catch (RuntimeException e) {
        last = e;
        LOG.warn("opening the committed pod on {} failed (attempt {}): {}", target.host(), attempt, e.getMessage());
        sleep(300L * attempt);
      }
    }
    throw new FinishLaterException("committed: pod " + pod.name() + " was restored on " + target.host()
        + " and the move recorded, but the target did not confirm it opened the pod's network: " + last.getMessage(), last);
  }

  /**
   * After the commit point a host needed to finish did not answer: the migration is neither
   * rolled back nor lost; it stays recorded as committed and the next recovery finishes it.
   */
  static final class FinishLaterException extends RuntimeException {
    FinishLaterException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** Recovery of a committed migration: opens the target's pod, waits for its memory, removes the source copy. */
  void finishCommitted() {
    committed = true;
    openTarget();
    releasePump(); // (a hybrid's pump, if its source agent did not restart since, is still held)
    // whatever the strategy (a recovery does not know how the restore went): the target waits
    // for any page daemon still filling the pod's memory, then drops the migration's images
    afterCommit(() -> target.step(id, "target", "pages", Map.of("pod", pod.name())), "the pod's memory");
    cleanup();
  }

  /**
   * A step to the target after the commit point: an unreachable agent (it may be restarting)
   * is waited for up to 30 s; then the migration is left for recovery.
   */
  private JsonNode afterCommit(java.util.function.Supplier<JsonNode> call, String what) {
    long deadline = now() + 30_000;
    while (true) {
      try {
        return call.get();
      } catch (AgentClient.AgentException e) {
        if (e.status() != 0) {
          throw e;
        }
        if (now() > deadline) {
          throw new FinishLaterException("committed: " + what + " needs the agent of " + target.host()
              + ", which has not answered for 30 s (" + e.getMessage() + "); the next ferry command finishes it", e);
        }
        sleep(1000);
      }
    }
  }

  /**
   * What the source's pump did, once the target has every page. Only figures for the report:
   * a source agent that died after the last page arrived (or restarted, its pump resumed) does
   * not make the migration fail, it leaves the figures unknown.
   */
  private JsonNode pumpStats() {
    try {
      return source.step(id, "source", "pump", Map.of("pod", pod.name(), "target", "", "wait", true));
    } catch (RuntimeException e) {
      LOG.warn("the pump's figures are not known ({}); every page is on {}", e.getMessage(), target.host());
      return Json.MAPPER.createObjectNode();
    }
  }

  /**
   * Runs {@code call} (a wait on the target for pages Ferry's pump sends from the source) while
   * checking every second that the source's agent answers. A source agent that died leaves the
   * pump cut off: the target keeps the pages that arrived and waits for a restarted agent to
   * pump again ({@code TargetRole.PUMP_RECONNECT_MS}); if the agent has not answered for 30 s,
   * the migration is left committed for the next ferry command, which restarts the agents.
   */
  private JsonNode whileSourceAnswers(java.util.function.Supplier<JsonNode> call, String what) {
    java.util.concurrent.CompletableFuture<JsonNode> waiting = java.util.concurrent.CompletableFuture.supplyAsync(call);
    long silentSince = 0;
    while (true) {
      try {
        return waiting.get(1, java.util.concurrent.TimeUnit.SECONDS);
      } catch (java.util.concurrent.TimeoutException e) {
        try {
          source.info();
          silentSince = 0;
        } catch (RuntimeException down) {
          silentSince = silentSince == 0 ? now() : silentSince;
          if (now() - silentSince > 30_000) {
            throw new FinishLaterException("committed: " + what + " is still coming from " + source.host()
                + ", whose agent has not answered for 30 s (" + down.getMessage() + "); the target keeps what arrived"
                + " and waits for a restarted agent to send the rest; the next ferry command finishes it", down);
          }
        }
      } catch (java.util.concurrent.ExecutionException e) {
        throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for " + what, e);
      }
    }
  }

  /**
   * Post-copy, after the commit point: waits until every page has arrived on the target.
   * Only then is the pod safe from a failure of its source.
   *
   * @throws PodLostException when pages could not be fetched: the pod's memory is incomplete
   */
  void awaitPages() {
    if (lazyLocal || (pumped && !hybrid())) {
      awaitLocalPages();
      return;
    }
    if (!postCopy() && !(pumped && hybrid())) {
      return;
    }
    enterPhase(MigrationPhase.POSTCOPY, "pod runs on " + options.targetHost() + ", memory still arriving from "
        + pod.name() + "'s source");
    store.stepStatus(id, "pages", "started");
    try {
      releasePump(); // (after a commit that could not release it)
      java.util.function.Supplier<JsonNode> pages = () -> afterCommit(
          () -> target.step(id, "target", "pages", Map.of("pod", pod.name())), "waiting for the pod's memory to arrive");
      JsonNode r = pumped ? whileSourceAnswers(pages, "the pod's memory") : pages.get();
      long crossed;
      if (pumped) {
        // hybrid: the pump sent only pages changed since the rounds; it has finished by now
        JsonNode p = pumpStats();
        report.postcopyPages = p.path("literalPages").asLong();
        report.postcopyPagesKept = p.path("keptPages").asLong();
        if (p.has("recentPages")) {
          report.postcopyPagesSentFirst = p.path("recentPages").asLong();
        }
        crossed = p.path("bytes").asLong();
        // the pod depended on its source until the pump delivered the last page
        report.atRiskMs = p.has("pumpMs") ? Math.max(0, pumpStartedAt + p.path("pumpMs").asLong() - restoreStart)
            : now() - restoreStart;
      } else {
        report.postcopyPages = r.path("pages").asLong();
        crossed = report.postcopyPages * 4096; // CRIU's page client moves whole 4 KiB pages
      }
      report.bytesTransferred = (report.bytesTransferred == null ? 0 : report.bytesTransferred) + crossed;
      if (!pumped) {
        report.atRiskMs = now() - restoreStart;
      }
      report.memoryFillMs = now() - restoreStart;
      store.stepStatus(id, "pages", "done");
    } catch (FinishLaterException e) {
      throw e;
    } catch (RuntimeException e) {
      report.atRiskMs = now() - restoreStart;
      throw new PodLostException("post-copy failed after the commit point, the pod's memory is incomplete: " + e.getMessage());
    } finally {
      endPhase();
    }
  }

  /**
   * Lazy restore from local images: waits until the target copied every page in. The pod does
   * not depend on its source meanwhile; the source copy is only removed after this.
   */
  private void awaitLocalPages() {
    enterPhase(MigrationPhase.POSTCOPY, "pod runs on " + options.targetHost() + ", memory filling in from its local images");
    store.stepStatus(id, "pages", "started");
    try {
      JsonNode r = afterCommit(() -> target.step(id, "target", "pages", Map.of("pod", pod.name())),
          "filling the pod's memory from its local images");
      report.memoryFillMs = now() - restoreStart;
      store.stepStatus(id, "pages", "done");
      LOG.info("all {} pages of pod {} in place {} ms after the restore began", r.path("pages").asLong(), pod.name(),
          report.memoryFillMs);
    } catch (FinishLaterException e) {
      throw e;
    } catch (RuntimeException e) {
      throw new PodLostException("filling the restored memory from local images failed after the commit point: "
          + e.getMessage());
    } finally {
      endPhase();
    }
  }

  /** Post-copy failed after the commit point. */
  static final class PodLostException extends RuntimeException {
    PodLostException(String message) {
      super(message);
    }
  }

  /** Removes the source copy after the commit point; retried, never rolled back. */
  void cleanup() {
    enterPhase(MigrationPhase.CLEANUP, "removing the source copy");
    store.stepStatus(id, "cleanup", "started");
    RuntimeException last = null;
    for (int attempt = 1; attempt <= 3; attempt++) {
      try {
        source.step(id, "source", "finish", Map.of("pod", pod.name()));
        store.stepStatus(id, "cleanup", "done");
        endPhase();
        return;
      } catch (RuntimeException e) {
        last = e;
        LOG.warn("cleanup attempt {} failed: {}", attempt, e.getMessage());
        sleep(500L * attempt);
      }
    }
    endPhase();
    throw last;
  }

  private void enterPhase(MigrationPhase phase, String what) {
    if (phase == currentPhase) {
      return;
    }
    endPhase();
    currentPhase = phase;
    phaseStart = now();
    store.setPhase(id, phase);
    progress.phase(id, phase, what);
    LOG.info("phase {}: {}", phase.displayName(), what);
  }

  private void endPhase() {
    if (currentPhase != null) {
      report.phases.add(new PhaseTiming(currentPhase.displayName(), phaseStart - t0, now() - t0));
      currentPhase = null;
    }
  }

  String reportJson() {
    return Json.write(report);
  }

  private static long now() {
    return System.currentTimeMillis();
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** A step failed; carries its name and phase for the report. */
  static final class StepFailedException extends Exception {
    final String step;
    final MigrationPhase phase;

    StepFailedException(String step, MigrationPhase phase, Exception cause) {
      super(cause.getMessage(), cause);
      this.step = step;
      this.phase = phase;
    }
  }
}
