package dev.ferry.migration;

import dev.ferry.api.HookCall;
import dev.ferry.api.MigrationReport;
import dev.ferry.api.PodIdentity;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The management-plane steps of one migration, beside the engine's: the pre- and
 * post-migration hooks, the target's reservation and the placeholder's temporary address,
 * the IPAM record following the identity (the source lets go before the target takes it),
 * and the service VIP's backend. Each has its undo; all are idempotent.
 */
final class HandoverSteps {
  private static final Logger LOG = LoggerFactory.getLogger(HandoverSteps.class);

  /** What the steps need from the coordinator. */
  record Context(MigrationStore store, Ipam ipam, Capacity capacity, Services services, Disks disks, String podRange,
      HookSpec.Hooks hooks, HookRunner hookRunner) {}

  private final String id;
  private final PodRecord pod;
  private final String targetHost;
  private final Context ctx;
  private final MigrationReport report;

  HandoverSteps(String id, PodRecord pod, String targetHost, Context ctx, MigrationReport report) {
    this.id = id;
    this.pod = pod;
    this.targetHost = targetHost;
    this.ctx = ctx;
    this.report = report;
  }

  /** A hook refused or failed under the "abort" policy. */
  static final class HookFailedException extends RuntimeException {
    HookFailedException(HookCall c) {
      super(c.hook() + " hook " + c.target() + " " + (c.result().equals("timeout") ? "timed out" : "failed") + " ("
          + c.answer() + "); policy abort");
    }
  }

  // ---- hooks ----

  void preHook() {
    call("pre-migration", ctx.hooks().pre(), "pre-migration");
  }

  /**
   * Tells a pre-hook that admitted the migration (its step is done, in this process or in the
   * one that crashed) that it was rolled back, so that it may free what it reserved.
   */
  void undoPreHook() {
    if (ctx.hooks().pre() != null && "done".equals(ctx.store().steps(id).get("pre-hook"))) {
      callQuietly("pre-migration", ctx.hooks().pre(), "rolled-back");
    }
  }

  /**
   * After the commit point: the pod runs on the target with its identity. A failure under
   * "abort" throws; the coordinator then moves the pod back (it may have acknowledged writes
   * on the target, which a plain rollback would lose).
   */
  void postHook() {
    call("post-migration", ctx.hooks().post(), "post-migration");
  }

  private void call(String hook, HookSpec spec, String phase) {
    if (spec == null) {
      return;
    }
    HookCall c = callQuietly(hook, spec, phase);
    if (!c.result().equals("ok")) {
      if (spec.onFailure().equals("abort")) {
        throw new HookFailedException(c);
      }
      LOG.warn("{} hook {}: {} ({}); policy ignore, going on", hook, spec.target(), c.result(), c.answer());
    }
  }

  private HookCall callQuietly(String hook, HookSpec spec, String phase) {
    PodIdentity i = pod.spec().identity();
    Map<String, Object> identity = new LinkedHashMap<>();
    identity.put("uid", i.uid());
    identity.put("name", i.name());
    identity.put("ip", i.ip());
    identity.put("mac", i.mac());
    HookCall c = ctx.hookRunner().call(hook, spec, new HookRunner.Payload(id, phase, pod.name(), pod.host(), targetHost,
        identity));
    synchronized (report.hooks) {
      report.hooks.add(c);
    }
    LOG.info("{} hook ({}): {} in {} ms", hook, phase, c.result(), c.ms());
    return c;
  }

  // ---- capacity and the placeholder's temporary address ----

  /** Reserves a slot and the pod's memory on the target and leases the placeholder's temporary IP. */
  String reserveTarget() {
    ctx.capacity().reserve(targetHost, Capacity.migrationOwner(id), "placeholder", pod.spec().memoryLimitMiB());
    return ctx.ipam().lease(ctx.podRange(), Ipam.placeholderOwner(id), "placeholder", targetHost);
  }

  void releaseTarget() {
    ctx.ipam().release(Ipam.placeholderOwner(id));
    ctx.capacity().release(Capacity.migrationOwner(id));
  }

  // ---- the identity's record in the IPAM ----

  /**
   * Recorded once the source let go of the pod's IP and the target took it (which takes a few
   * ms in all, with nothing in between): the placeholder's temporary address ends, and the
   * pod's lease moves from the source to the target in one transaction.
   */
  void identityMoved() {
    ctx.ipam().handOver(pod.spec().identity().ip(), pod.host(), targetHost, Ipam.placeholderOwner(id));
  }

  /** The target let go of the IP again (rollback). */
  void identityGivenUpByTarget() {
    ctx.ipam().moveTo(pod.spec().identity().ip(), null);
  }

  /** The source holds the IP again (rollback). */
  void identityBackOnSource() {
    ctx.ipam().moveTo(pod.spec().identity().ip(), pod.host());
  }

  // ---- network disks: detached from the source after the freeze, attached to the target before the restore ----

  /** Whether the pod uses network disks (only then are the disk steps in the table). */
  boolean hasDisks() {
    return !disks().isEmpty();
  }

  private java.util.List<String> disks() {
    return pod.spec().volumes().stream().filter(v -> v.kind().equals("disk")).map(v -> v.name()).toList();
  }

  void detachDisksFromSource() {
    disks().forEach(d -> ctx.disks().detach(d, pod.host()));
  }

  /** Rollback: the source gets its disks back (refused while the target still holds one). Idempotent. */
  void attachDisksToSource() {
    disks().forEach(d -> ctx.disks().attach(d, pod.host()));
  }

  void attachDisksToTarget() {
    disks().forEach(d -> ctx.disks().attach(d, targetHost));
  }

  void detachDisksFromTarget() {
    disks().forEach(d -> ctx.disks().detach(d, targetHost));
  }

  // ---- service VIPs ----

  /** Whether the pod is behind a service VIP (only then is the switch in the table). */
  boolean hasServices() {
    if (hasServices == null) {
      hasServices = ctx.services().published(pod.name());
    }
    return hasServices;
  }

  private Boolean hasServices;

  /**
   * Inside the frozen window, so only the record moves here: the DNAT rule already forwards to
   * the pod's IP, which the target holds now. The kernel's rules are rewritten from the record
   * after the commit ({@link #refreshVip}). Its time shows in the report's frozen breakdown.
   */
  void switchVip() {
    long t0 = System.currentTimeMillis();
    ctx.services().switchTo(pod.name(), pod.spec().identity().ip(), targetHost, false);
    report.frozenBreakdownMs.put("switchVip", System.currentTimeMillis() - t0);
  }

  /** Rollback: the VIP's record and rules name the source again. */
  void switchVipBack() {
    ctx.services().switchTo(pod.name(), pod.spec().identity().ip(), pod.host(), true);
  }

  /** After the commit: the kernel's rules follow the record (out of the frozen window). */
  void refreshVip() {
    if (hasServices()) {
      ctx.services().refresh(pod.name(), pod.spec().identity().ip());
    }
  }
}
