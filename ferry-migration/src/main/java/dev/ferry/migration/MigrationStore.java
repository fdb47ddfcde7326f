package dev.ferry.migration;

import dev.ferry.api.Json;
import dev.ferry.api.MigrationPhase;
import dev.ferry.api.PodSpec;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The coordinator's durable record in an embedded H2 database: pods with their identities
 * (an IP, a UID and a name each have exactly one owner: unique keys), migrations and the
 * steps each has started and finished. Written before acting, so that a restarted
 * coordinator knows what to finish or undo.
 */
public final class MigrationStore implements AutoCloseable {
  private final Connection db;

  /** Opens (creating if needed) the store in {@code dir}; several processes may share it. */
  public MigrationStore(Path dir) {
    try {
      // AUTO_SERVER lets a second ferry process (say `ferry status` during a migration) in,
      // through a loopback port the first process serves
      db = DriverManager.getConnection("jdbc:h2:file:" + dir.resolve("ferry").toAbsolutePath() + ";AUTO_SERVER=TRUE", "sa", "");
      try (Statement s = db.createStatement()) {
        s.execute("CREATE TABLE IF NOT EXISTS pods (name VARCHAR(64) PRIMARY KEY, uid VARCHAR(64) NOT NULL UNIQUE,"
            + " ip VARCHAR(32) NOT NULL UNIQUE, mac VARCHAR(32) NOT NULL UNIQUE, host VARCHAR(64) NOT NULL,"
            + " state VARCHAR(32) NOT NULL, spec CLOB NOT NULL)");
        s.execute("CREATE TABLE IF NOT EXISTS migrations (id VARCHAR(64) PRIMARY KEY, pod VARCHAR(64) NOT NULL,"
            + " source VARCHAR(64) NOT NULL, target VARCHAR(64) NOT NULL, strategy VARCHAR(16) NOT NULL,"
            + " phase VARCHAR(32) NOT NULL, committed BOOLEAN NOT NULL, owner_pid BIGINT NOT NULL,"
            + " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, error CLOB, report CLOB)");
        s.execute("ALTER TABLE migrations ADD COLUMN IF NOT EXISTS cancel_requested BOOLEAN DEFAULT FALSE NOT NULL");
        // the migration's hooks, so that a recovery can tell an admitting pre-hook it was rolled back
        s.execute("ALTER TABLE migrations ADD COLUMN IF NOT EXISTS hooks CLOB");
        s.execute("CREATE TABLE IF NOT EXISTS steps (seq BIGINT GENERATED ALWAYS AS IDENTITY,"
            + " migration_id VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"
            + " status VARCHAR(16) NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (migration_id, step))");
        // the lab's IPAM: an address has at most one lease (primary key), so never two owners
        s.execute("CREATE TABLE IF NOT EXISTS leases (ip VARCHAR(32) PRIMARY KEY, owner VARCHAR(96) NOT NULL,"
            + " kind VARCHAR(16) NOT NULL, host VARCHAR(64), since BIGINT NOT NULL)");
        // host capacity and what pods and placeholders reserve from it
        s.execute("CREATE TABLE IF NOT EXISTS hosts (name VARCHAR(64) PRIMARY KEY, memory_mib BIGINT NOT NULL,"
            + " pod_slots INT NOT NULL)");
        s.execute("CREATE TABLE IF NOT EXISTS reservations (owner VARCHAR(96) PRIMARY KEY, host VARCHAR(64) NOT NULL,"
            + " kind VARCHAR(16) NOT NULL, memory_mib BIGINT NOT NULL, since BIGINT NOT NULL)");
        s.execute("CREATE TABLE IF NOT EXISTS services (name VARCHAR(64) PRIMARY KEY, vip VARCHAR(32) NOT NULL UNIQUE,"
            + " port INT NOT NULL, pod VARCHAR(64) NOT NULL, backend_host VARCHAR(64) NOT NULL)");
        // network disks: at most one host each
        s.execute("CREATE TABLE IF NOT EXISTS disks (name VARCHAR(64) PRIMARY KEY, host VARCHAR(64))");
      }
    } catch (SQLException e) {
      throw new IllegalStateException("cannot open the coordinator's store in " + dir + ": " + e.getMessage(), e);
    }
  }

  // ---- pods and identities ----

  public synchronized void insertPod(PodRecord p) {
    update("INSERT INTO pods (name, uid, ip, mac, host, state, spec) VALUES (?,?,?,?,?,?,?)",
        p.name(), p.spec().identity().uid(), p.spec().identity().ip(), p.spec().identity().mac(), p.host(), p.state(),
        Json.write(p.spec()));
  }

  public synchronized void setPodState(String name, String state) {
    update("UPDATE pods SET state=? WHERE name=?", state, name);
  }

  /**
   * Changes a pod's state only if it is {@code expected} now; false if another process got
   * there first (e.g. two migrations of one pod started at once).
   */
  public synchronized boolean compareAndSetPodState(String name, String expected, String state) {
    try (PreparedStatement ps = prepare("UPDATE pods SET state=? WHERE name=? AND state=?", state, name, expected)) {
      return ps.executeUpdate() == 1;
    } catch (SQLException e) {
      throw new IllegalStateException("store: " + e.getMessage(), e);
    }
  }

  public synchronized void deletePod(String name) {
    update("DELETE FROM pods WHERE name=?", name);
  }

  public synchronized Optional<PodRecord> pod(String name) {
    List<PodRecord> l = pods("SELECT spec, host, state FROM pods WHERE name=?", name);
    return l.isEmpty() ? Optional.empty() : Optional.of(l.get(0));
  }

  public synchronized List<PodRecord> pods() {
    return pods("SELECT spec, host, state FROM pods ORDER BY name");
  }

  /** IPs that have an owner now. */
  public synchronized List<String> ipsInUse() {
    List<String> ips = new ArrayList<>();
    for (PodRecord p : pods()) {
      ips.add(p.spec().identity().ip());
    }
    return ips;
  }

  // ---- migrations ----

  public synchronized void insertMigration(MigrationRecord m) {
    update("INSERT INTO migrations (id, pod, source, target, strategy, phase, committed, owner_pid, created_at, updated_at)"
        + " VALUES (?,?,?,?,?,?,?,?,?,?)", m.id(), m.pod(), m.source(), m.target(), m.strategy(), m.phase().name(),
        false, m.ownerPid(), m.createdAt(), m.updatedAt());
  }

  public synchronized void setPhase(String id, MigrationPhase phase) {
    update("UPDATE migrations SET phase=?, updated_at=? WHERE id=?", phase.name(), System.currentTimeMillis(), id);
  }

  /** Asks the process driving a migration to stop it and roll back (honoured before the commit point). */
  public synchronized void requestCancel(String id) {
    update("UPDATE migrations SET cancel_requested=TRUE WHERE id=?", id);
  }

  public synchronized boolean cancelRequested(String id) {
    try (PreparedStatement ps = prepare("SELECT cancel_requested FROM migrations WHERE id=?", id);
        ResultSet rs = ps.executeQuery()) {
      return rs.next() && rs.getBoolean(1);
    } catch (SQLException e) {
      throw new IllegalStateException("store: " + e.getMessage(), e);
    }
  }

  public synchronized void setOwner(String id, long pid) {
    update("UPDATE migrations SET owner_pid=? WHERE id=?", pid, id);
  }

  public synchronized void setError(String id, String error) {
    update("UPDATE migrations SET error=? WHERE id=?", error, id);
  }

  /** Records a migration's hooks (JSON), for a recovery to call them. */
  public synchronized void setHooks(String id, String hooksJson) {
    update("UPDATE migrations SET hooks=? WHERE id=?", hooksJson, id);
  }

  /** A migration's hooks as recorded (JSON), or null. */
  public synchronized String hooks(String id) {
    try (PreparedStatement ps = prepare("SELECT hooks FROM migrations WHERE id=?", id); ResultSet rs = ps.executeQuery()) {
      return rs.next() ? rs.getString(1) : null;
    } catch (SQLException e) {
      throw new IllegalStateException("store: " + e.getMessage(), e);
    }
  }

  public synchronized void setReport(String id, String reportJson) {
    update("UPDATE migrations SET report=? WHERE id=?", reportJson, id);
  }

  /**
   * The commit point, in one transaction: the migration is committed and the pod's one owner
   * becomes the target host.
   */
  /**
   * Takes back a commit whose target copy never served anyone (it died before its network was
   * opened): the pod, its lease and a reservation are the source's again, the target's
   * reservation the placeholder's, and the migration may be rolled back. One transaction.
   */
  public synchronized void uncommit(String id, String pod, String source, long memoryMiB) {
    try {
      db.setAutoCommit(false);
      update("UPDATE migrations SET committed=FALSE, updated_at=? WHERE id=?", System.currentTimeMillis(), id);
      update("UPDATE pods SET host=? WHERE name=?", source, pod);
      update("UPDATE leases SET host=? WHERE owner=?", source, Ipam.podOwner(pod));
      update("UPDATE reservations SET owner=?, kind='placeholder' WHERE owner=?", Capacity.migrationOwner(id),
          Capacity.podOwner(pod));
      update("INSERT INTO reservations (owner, host, kind, memory_mib, since) VALUES (?,?,?,?,?)", Capacity.podOwner(pod),
          source, "pod", memoryMiB, System.currentTimeMillis());
      db.commit();
    } catch (SQLException | RuntimeException e) {
      try {
        db.rollback();
      } catch (SQLException ignored) {
        // the original error is the one to report
      }
      throw new IllegalStateException("cannot take back the commit of migration " + id + ": " + e.getMessage(), e);
    } finally {
      try {
        db.setAutoCommit(true);
      } catch (SQLException ignored) {
        // connection broken: the next call reports it
      }
    }
  }

  public synchronized void commit(String id, String pod, String target) {
    try {
      db.setAutoCommit(false);
      update("UPDATE migrations SET committed=TRUE, phase=?, updated_at=? WHERE id=?", MigrationPhase.CUTOVER.name(),
          System.currentTimeMillis(), id);
      update("UPDATE pods SET host=? WHERE name=?", target, pod);
      // the IPAM and the capacity follow in the same transaction: the pod's address is owned
      // by the target now, and the placeholder's reservation becomes the pod's
      update("UPDATE leases SET host=? WHERE owner=?", target, Ipam.podOwner(pod));
      update("DELETE FROM reservations WHERE owner=?", Capacity.podOwner(pod));
      update("UPDATE reservations SET owner=?, kind='pod' WHERE owner=?", Capacity.podOwner(pod),
          Capacity.migrationOwner(id));
      db.commit();
    } catch (SQLException | RuntimeException e) {
      try {
        db.rollback();
      } catch (SQLException ignored) {
        // the original error is the one to report
      }
      throw new IllegalStateException("cannot record the commit of migration " + id + ": " + e.getMessage(), e);
    } finally {
      try {
        db.setAutoCommit(true);
      } catch (SQLException ignored) {
        // connection broken: the next call reports it
      }
    }
  }

  public synchronized Optional<MigrationRecord> migration(String id) {
    List<MigrationRecord> l = migrations("WHERE id=?", id);
    return l.isEmpty() ? Optional.empty() : Optional.of(l.get(0));
  }

  public synchronized List<MigrationRecord> migrations() {
    return migrations("ORDER BY created_at");
  }

  // ---- steps ----

  public synchronized void stepStatus(String migrationId, String step, String status) {
    long now = System.currentTimeMillis();
    try (PreparedStatement ps = prepare("UPDATE steps SET status=?, at=? WHERE migration_id=? AND step=?", status, now,
        migrationId, step)) {
      if (ps.executeUpdate() == 1) {
        return;
      }
    } catch (SQLException e) {
      throw new IllegalStateException("store: " + e.getMessage(), e);
    }
    update("INSERT INTO steps (migration_id, step, status, at) VALUES (?,?,?,?)", migrationId, step, status, now);
  }

  /** Step name to status ("started", "done", "undone"), in the order they were first started. */
  public synchronized Map<String, String> steps(String migrationId) {
    Map<String, String> m = new LinkedHashMap<>();
    try (PreparedStatement ps = db.prepareStatement("SELECT step, status FROM steps WHERE migration_id=? ORDER BY seq")) {
      ps.setString(1, migrationId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          m.put(rs.getString(1), rs.getString(2));
        }
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return m;
  }

  private List<MigrationRecord> migrations(String where, Object... args) {
    List<MigrationRecord> out = new ArrayList<>();
    String sql = "SELECT id, pod, source, target, strategy, phase, committed, owner_pid, created_at, updated_at, error,"
        + " report FROM migrations " + where;
    try (PreparedStatement ps = prepare(sql, args); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        out.add(new MigrationRecord(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
            MigrationPhase.valueOf(rs.getString(6)), rs.getBoolean(7), rs.getLong(8), rs.getLong(9), rs.getLong(10),
            rs.getString(11), rs.getString(12)));
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return out;
  }

  private List<PodRecord> pods(String sql, Object... args) {
    List<PodRecord> out = new ArrayList<>();
    try (PreparedStatement ps = prepare(sql, args); ResultSet rs = ps.executeQuery()) {
      while (rs.next()) {
        out.add(new PodRecord(Json.read(rs.getString(1), PodSpec.class), rs.getString(2), rs.getString(3)));
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return out;
  }

  /** Work on the store's connection inside one transaction (the caller holds the store's lock). */
  @FunctionalInterface
  interface SqlWork<T> {
    T apply(Connection db) throws SQLException;
  }

  /**
   * Runs {@code work} in one transaction, under this store's lock (one process) and the
   * database's row locks (several processes: use SELECT ... FOR UPDATE in {@code work}).
   */
  synchronized <T> T inTransaction(SqlWork<T> work) {
    try {
      db.setAutoCommit(false);
      T result = work.apply(db);
      db.commit();
      return result;
    } catch (SQLException | RuntimeException e) {
      try {
        db.rollback();
      } catch (SQLException ignored) {
        // the original error is the one to report
      }
      if (e instanceof RuntimeException re) {
        throw re;
      }
      throw new IllegalStateException("store: " + e.getMessage(), e);
    } finally {
      try {
        db.setAutoCommit(true);
      } catch (SQLException ignored) {
        // connection broken: the next call reports it
      }
    }
  }

  private void update(String sql, Object... args) {
    try (PreparedStatement ps = prepare(sql, args)) {
      ps.executeUpdate();
    } catch (SQLException e) {
      throw new IllegalStateException("store: " + e.getMessage(), e);
    }
  }

  private PreparedStatement prepare(String sql, Object... args) throws SQLException {
    PreparedStatement ps = db.prepareStatement(sql);
    for (int i = 0; i < args.length; i++) {
      ps.setObject(i + 1, args[i]);
    }
    return ps;
  }

  @Override
  public void close() {
    try {
      db.close();
    } catch (SQLException e) {
      // closing
    }
  }
}
