package dev.ferry.migration;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * What each host offers (memory and pod slots) and what pods and placeholders reserve from
 * it, in the coordinator's durable store. A reservation is checked and written in one
 * transaction that locks the host's row, so concurrent migrations (in one process or several)
 * cannot overbook a host.
 */
public final class Capacity {
  /** One reservation: a running pod ("pod") or a migration's placeholder ("placeholder"). */
  public record Reservation(String owner, String host, String kind, long memoryMiB) {}

  /** A host's capacity and what is reserved of it now. */
  public record HostUsage(String host, long memoryMiB, int podSlots, long memoryReservedMiB, int slotsReserved,
      List<Reservation> reservations) {}

  /** A reservation that does not fit; the message says why. */
  public static final class CapacityException extends IllegalStateException {
    public CapacityException(String message) {
      super(message);
    }
  }

  private final MigrationStore store;

  public Capacity(MigrationStore store) {
    this.store = store;
  }

  /** Owner name of a running pod's reservation. */
  public static String podOwner(String pod) {
    return "pod:" + pod;
  }

  /** Owner name of a migration's placeholder reservation. */
  public static String migrationOwner(String migrationId) {
    return "migration:" + migrationId;
  }

  /** Records a host's capacity unless it is known already (the first definition stays). */
  public void defineHost(String host, long memoryMiB, int podSlots) {
    if (memoryMiB <= 0 || podSlots <= 0) {
      throw new IllegalArgumentException("host " + host + ": capacity must be positive (" + memoryMiB + " MiB, "
          + podSlots + " pod slots)");
    }
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("MERGE INTO hosts (name, memory_mib, pod_slots) KEY (name)"
          + " SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM hosts WHERE name=?)")) {
        ps.setString(1, host);
        ps.setLong(2, memoryMiB);
        ps.setInt(3, podSlots);
        ps.setString(4, host);
        ps.executeUpdate();
      }
      return null;
    });
  }

  /**
   * Reserves one pod slot and {@code memoryMiB} on {@code host} for {@code owner}; idempotent
   * for an owner that holds a reservation there already.
   *
   * @throws CapacityException when the host has no free slot or not enough memory, naming who holds it
   */
  public void reserve(String host, String owner, String kind, long memoryMiB) {
    store.inTransaction(db -> {
      long capMem;
      int capSlots;
      try (PreparedStatement ps = db.prepareStatement("SELECT memory_mib, pod_slots FROM hosts WHERE name=? FOR UPDATE")) {
        ps.setString(1, host);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            throw new CapacityException("host " + host + " has no recorded capacity; is it part of the lab?");
          }
          capMem = rs.getLong(1);
          capSlots = rs.getInt(2);
        }
      }
      List<Reservation> held = reservations(db, host);
      if (held.stream().anyMatch(r -> r.owner().equals(owner))) {
        return null;
      }
      long mem = held.stream().mapToLong(Reservation::memoryMiB).sum();
      String holders = held.stream().map(r -> r.owner() + " " + r.memoryMiB() + " MiB").toList().toString();
      if (held.size() + 1 > capSlots) {
        throw new CapacityException("host " + host + " is full: all " + capSlots + " pod slots are reserved " + holders);
      }
      if (mem + memoryMiB > capMem) {
        throw new CapacityException("host " + host + " has " + (capMem - mem) + " MiB free of " + capMem + " MiB, "
            + owner + " needs " + memoryMiB + " MiB; reserved: " + holders);
      }
      try (PreparedStatement ps = db.prepareStatement(
          "INSERT INTO reservations (owner, host, kind, memory_mib, since) VALUES (?,?,?,?,?)")) {
        ps.setString(1, owner);
        ps.setString(2, host);
        ps.setString(3, kind);
        ps.setLong(4, memoryMiB);
        ps.setLong(5, System.currentTimeMillis());
        ps.executeUpdate();
      }
      return null;
    });
  }

  /** Gives back {@code owner}'s reservation. Idempotent. */
  public void release(String owner) {
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("DELETE FROM reservations WHERE owner=?")) {
        ps.setString(1, owner);
        ps.executeUpdate();
      }
      return null;
    });
  }

  /** Every host with its capacity and reservations. */
  public List<HostUsage> usage() {
    return store.inTransaction(db -> {
      List<HostUsage> out = new ArrayList<>();
      List<Object[]> hosts = new ArrayList<>();
      try (PreparedStatement ps = db.prepareStatement("SELECT name, memory_mib, pod_slots FROM hosts ORDER BY name");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          hosts.add(new Object[] {rs.getString(1), rs.getLong(2), rs.getInt(3)});
        }
      }
      for (Object[] h : hosts) {
        List<Reservation> r = reservations(db, (String) h[0]);
        out.add(new HostUsage((String) h[0], (Long) h[1], (Integer) h[2], r.stream().mapToLong(Reservation::memoryMiB).sum(),
            r.size(), r));
      }
      return out;
    });
  }

  private static List<Reservation> reservations(java.sql.Connection db, String host) throws SQLException {
    List<Reservation> out = new ArrayList<>();
    try (PreparedStatement ps = db.prepareStatement(
        "SELECT owner, host, kind, memory_mib FROM reservations WHERE host=? ORDER BY since, owner")) {
      ps.setString(1, host);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new Reservation(rs.getString(1), rs.getString(2), rs.getString(3), rs.getLong(4)));
        }
      }
    }
    return out;
  }
}
