package dev.ferry.cli.chaos;

import dev.ferry.api.MigrationPhase;
import dev.ferry.cli.demo.IpOwnerSamples;
import dev.ferry.cli.demo.LoadResult;
import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.migration.PodRecord;
import dev.ferry.runtime.Exec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What must hold after every cell, whatever the fault: the client's acknowledged writes are all
 * in the one surviving copy; exactly one copy of the pod runs, where the store says; the pod's IP
 * was never answered by two hosts and did not change; the migration ended, and its outcome
 * matches where the pod runs; nothing was left behind ({@link LabSnapshot}).
 */
public final class Invariants {
  private Invariants() {}

  /** Where each host's copy of {@code pod}'s container {@code container} is, by host: runc's status. */
  public static Map<String, String> copies(Lab lab, String pod, String container) {
    Map<String, String> out = new TreeMap<>();
    for (LabConfig.HostEntry h : lab.config().hosts()) {
      var r = Exec.run("runc", "state", h.netns() + "-" + pod + "-" + container);
      if (r.ok()) {
        String status = r.stdout().replaceAll("(?s).*\"status\":\\s*\"([a-z]+)\".*", "$1");
        out.put(h.name(), status);
      }
    }
    return out;
  }

  /**
   * @param before the lab before the cell; {@code after} once everything was healed and recovered
   * @param ipBefore the pod's IP before the cell
   * @param owners who answered for the IP during the cell, or null if it was not probed
   */
  public static List<String> check(String pod, Map<String, String> copies, PodRecord record, MigrationRecord migration,
      String ipBefore, LoadResult load, IpOwnerSamples.Summary owners, LabSnapshot before, LabSnapshot after) {
    List<String> v = new ArrayList<>();
    List<String> running = copies.entrySet().stream().filter(e -> e.getValue().equals("running")).map(Map.Entry::getKey)
        .toList();
    if (running.size() != 1) {
      v.add("pod " + pod + " runs on " + running.size() + " hosts " + running + " (copies: " + copies + ")");
    }
    copies.forEach((host, status) -> {
      if (!status.equals("running")) {
        v.add("a " + status + " copy of pod " + pod + " is left on " + host);
      }
    });
    if (record == null) {
      v.add("the store has no pod " + pod);
    } else {
      if (running.size() == 1 && !record.host().equals(running.get(0))) {
        v.add("the store says pod " + pod + " is on " + record.host() + "; it runs on " + running.get(0));
      }
      if (!record.spec().identity().ip().equals(ipBefore)) {
        v.add("the pod's IP changed from " + ipBefore + " to " + record.spec().identity().ip());
      }
      if (!"running".equals(record.state())) {
        v.add("the store says pod " + pod + " is " + record.state());
      }
    }
    if (migration != null) {
      MigrationPhase p = migration.phase();
      if (!p.isFinal()) {
        v.add("migration " + migration.id() + " was left in phase " + p.displayName());
      } else if (running.size() == 1) {
        String expected = p == MigrationPhase.SUCCEEDED ? migration.target() : migration.source();
        if (!running.get(0).equals(expected)) {
          v.add("migration " + migration.id() + " ended " + p.displayName() + " but the pod runs on " + running.get(0));
        }
      }
    }
    if (load == null) {
      v.add("the load client gave no result");
    } else {
      if (load.lost > 0) {
        v.add(load.lost + " acknowledged writes lost (of " + load.acked + ")");
      }
      if (!load.verified) {
        v.add("the client could not read its writes back: " + load.error);
      }
    }
    if (owners != null && owners.ownersMax() > 1) {
      v.add("the pod's IP was answered by " + owners.ownersMax() + " hosts at once (" + owners.sequence() + ")");
    }
    v.addAll(before.differences(after));
    return v;
  }
}
