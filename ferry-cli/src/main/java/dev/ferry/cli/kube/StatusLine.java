package dev.ferry.cli.kube;

import dev.ferry.kubernetes.model.NodeDrainStatus;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import java.util.Locale;

/** How a PodMigration's or NodeDrain's status reads on one line of a terminal. */
final class StatusLine {
  private StatusLine() {}

  /** Phase, then what is known of the progress: round, bytes, rate, predicted freeze; then the outcome. */
  static String of(PodMigrationStatus st) {
    if (st == null || st.phase == null) {
      return "Waiting for the controller";
    }
    StringBuilder b = new StringBuilder(st.phase);
    PodMigrationStatus.Progress p = st.progress;
    if (p != null && !st.ended()) {
      if (p.round != null) {
        b.append("  round ").append(p.round);
      }
      if (p.bytes != null) {
        b.append("  ").append(bytes(p.bytes));
      }
      if (p.bytesPerSecond != null && p.bytesPerSecond > 0) {
        b.append("  ").append(bytes(p.bytesPerSecond)).append("/s");
      }
      if (p.predictedFreezeMs != null) {
        b.append("  predicted freeze ").append(p.predictedFreezeMs).append(" ms");
      }
    }
    if ("Succeeded".equals(st.phase)) {
      b.append("  ").append(st.sourceNode).append(" -> ").append(st.targetNode);
      if (st.strategy != null) {
        b.append(" (").append(st.strategy).append(')');
      }
      if (st.frozenMs != null) {
        b.append(", frozen ").append(st.frozenMs).append(" ms");
      }
    } else if (st.ended() && st.failureReason != null) {
      b.append(": ").append(st.failureReason.lines().findFirst().orElse(""));
    }
    return b.toString();
  }

  /** Phase and counts of a drain. */
  static String of(NodeDrainStatus st) {
    if (st == null || st.phase == null) {
      return "Waiting for the controller";
    }
    return String.format(Locale.ROOT, "%s  migrated %d, remaining %d, failed %d, skipped %d, evicted %d", st.phase,
        st.migrated, st.remaining, st.failed, st.skipped, st.evicted);
  }

  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    double v = n;
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }
}
