package dev.ferry.kubernetes.controller;

import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.MigrationFailedException;
import dev.ferry.migration.MigrationOptions;
import dev.ferry.migration.MigrationRecord;
import dev.ferry.migration.ProgressListener;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The controller's engine: Ferry's own {@link Coordinator}, the state machine `ferry migrate`
 * drives (steps, undo, commit point, durable record, recovery), with nodes as its hosts. Its
 * agents run the pods themselves (a lab: no kubelet), creating their own placeholder sandbox on
 * the target, so it does not restore into the controller's placeholder Pods ({@link
 * #restoresIntoPods()} is false) and the controller leaves Pod objects alone.
 */
public final class CoordinatorEngine implements MigrationEngine {
  private final Coordinator coordinator;
  private final Set<String> driving = ConcurrentHashMap.newKeySet();
  private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "ferry-k8s-migration");
    t.setDaemon(true);
    return t;
  });

  public CoordinatorEngine(Coordinator coordinator) {
    this.coordinator = coordinator;
  }

  @Override
  public boolean restoresIntoPods() {
    return false;
  }

  @Override
  public void start(Request r, Listener l) {
    pool.submit(() -> {
      String[] id = {null};
      ProgressListener progress = new ProgressListener() {
        @Override
        public void phase(String mid, MigrationPhase phase, String what) {
          if (id[0] == null) {
            id[0] = mid;
            driving.add(mid);
            l.started(mid);
          }
          l.phase(mid, phase, what);
        }

        @Override
        public void transfer(String mid, long bytes, double bytesPerSecond) {
          l.progress(mid, bytes, bytesPerSecond, 0, 0, 0);
        }

        @Override
        public void round(String mid, Round round) {
          l.progress(mid, round.bytes(), round.bytesPerSecond(), round.round(), round.dirtyBytesPerSecond(),
              round.predictedFrozenMs());
        }
      };
      MigrationReport report;
      try {
        report = coordinator.migrate(new MigrationOptions(r.pod(), r.targetNode(), r.strategy(), List.of(),
            r.bandwidthMBps(), r.maxFreezeMs(), r.allowPostcopy(), "proceed"), progress);
      } catch (MigrationFailedException e) {
        report = e.report();
      } catch (RuntimeException e) {
        report = new MigrationReport(); // refused before anything started (pre-checks)
        report.outcome = "failed";
        report.error = e.getMessage();
      }
      try {
        l.ended(id[0], report);
      } finally {
        if (id[0] != null) {
          driving.remove(id[0]);
        }
      }
    });
  }

  @Override
  public void cancel(String migrationId) {
    coordinator.store().requestCancel(migrationId);
  }

  @Override
  public boolean drives(String migrationId) {
    return driving.contains(migrationId);
  }

  @Override
  public Optional<MigrationReport> recover(String migrationId) {
    coordinator.recover();
    Optional<MigrationRecord> rec = coordinator.store().migration(migrationId);
    if (rec.isEmpty()) {
      return Optional.empty();
    }
    MigrationRecord m = rec.get();
    MigrationReport report = m.reportJson() != null ? Json.read(m.reportJson(), MigrationReport.class) : new MigrationReport();
    report.outcome = switch (m.phase()) {
      case SUCCEEDED -> "migrated";
      case ROLLED_BACK -> "rolled-back";
      case FAILED -> "failed";
      default -> UNFINISHED; // a host it needs is still away: recovery retries
    };
    report.error = m.phase() == MigrationPhase.SUCCEEDED ? null : m.error();
    return Optional.of(report);
  }
}
