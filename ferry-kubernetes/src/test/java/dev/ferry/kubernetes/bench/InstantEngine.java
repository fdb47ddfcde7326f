package dev.ferry.kubernetes.bench;

import dev.ferry.api.MigrationPhase;
import dev.ferry.api.MigrationReport;
import dev.ferry.kubernetes.controller.MigrationEngine;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The fastest stand-in behind the engine boundary: every migration reports its id, Ferry's
 * phases (Preparing to Cutover), one progress line and success, without waiting between them,
 * on a fixed pool of threads. What the benchmark measures is then the controller's own cost:
 * reconciles, status writes and events through the API server.
 */
final class InstantEngine implements MigrationEngine, AutoCloseable {
  private static final List<MigrationPhase> PHASES = List.of(MigrationPhase.PREPARING, MigrationPhase.DUMPING,
      MigrationPhase.TRANSFERRING, MigrationPhase.RESTORING, MigrationPhase.CUTOVER);

  private final ExecutorService pool;
  private final Set<String> driving = ConcurrentHashMap.newKeySet();
  private final AtomicInteger ids = new AtomicInteger();
  private final Runnable onSucceeded;

  /** {@code onSucceeded} runs after a migration's success was handed to the controller (and so written). */
  InstantEngine(int threads, Runnable onSucceeded) {
    this.pool = Executors.newFixedThreadPool(threads, r -> {
      Thread t = new Thread(r, "instant-engine");
      t.setDaemon(true);
      return t;
    });
    this.onSucceeded = onSucceeded;
  }

  /** No Pod objects: the benchmark measures reconciles and status writes, as it did before placeholders. */
  @Override
  public boolean restoresIntoPods() {
    return false;
  }

  @Override
  public void start(Request r, Listener l) {
    String id = "m-bench-" + ids.incrementAndGet();
    driving.add(id);
    pool.submit(() -> {
      try {
        l.started(id);
        for (MigrationPhase p : PHASES) {
          l.phase(id, p, p.displayName() + " " + r.pod());
          if (p == MigrationPhase.TRANSFERRING) {
            l.progress(id, 64L << 20, 1e9, 1, 1e6, 40);
          }
        }
        MigrationReport rep = new MigrationReport();
        rep.outcome = "migrated";
        rep.strategy = "cold";
        rep.sourceHost = r.sourceNode();
        rep.targetHost = r.targetNode();
        rep.frozenMs = 1L;
        l.ended(id, rep);
        onSucceeded.run();
      } finally {
        driving.remove(id);
      }
    });
  }

  @Override
  public void cancel(String migrationId) {
    // never asked: no benchmark migration is cancelled
  }

  @Override
  public boolean drives(String migrationId) {
    return driving.contains(migrationId);
  }

  @Override
  public Optional<MigrationReport> recover(String migrationId) {
    return Optional.empty();
  }

  @Override
  public void close() {
    pool.shutdownNow();
  }
}
