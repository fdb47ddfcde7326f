package dev.ferry.migration;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * The lab's IP address management, kept in the coordinator's durable store: every address in
 * use has exactly one lease (its primary key), with an owner (a pod, a migration's
 * placeholder, a service VIP) and the host that may answer for it now, or none while it is
 * being handed over. A second lease of a leased address fails; two live owners cannot exist.
 */
public final class Ipam {
  /** One lease: {@code host} is null while nobody may answer for the address (hand-over). */
  public record Lease(String ip, String owner, String kind, String host, long since) {}

  private final MigrationStore store;

  public Ipam(MigrationStore store) {
    this.store = store;
  }

  /** Owner name of a pod's address. */
  public static String podOwner(String pod) {
    return "pod:" + pod;
  }

  /** Owner name of a migration's placeholder (its temporary address). */
  public static String placeholderOwner(String migrationId) {
    return "placeholder:" + migrationId;
  }

  /** Owner name of a service's VIP. */
  public static String serviceOwner(String service) {
    return "service:" + service;
  }

  /**
   * Leases the lowest free address of {@code range} ("10.77.1." : .2 to .254) to {@code owner};
   * idempotent for an owner that already holds one address of that kind.
   *
   * @throws IllegalStateException when the range is full
   */
  public String lease(String range, String owner, String kind, String host) {
    return lease(range, owner, kind, host, false);
  }

  /**
   * Leases an address to an owner that holds none yet: the atomic claim of a name (two
   * callers creating one pod at once: the second is refused).
   *
   * @throws IllegalStateException when {@code owner} holds a lease already
   */
  public String leaseNew(String range, String owner, String kind, String host) {
    return lease(range, owner, kind, host, true);
  }

  private String lease(String range, String owner, String kind, String host, boolean exclusive) {
    return store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("SELECT ip FROM leases WHERE owner=? AND kind=?")) {
        ps.setString(1, owner);
        ps.setString(2, kind);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) {
            if (exclusive) {
              throw new IllegalStateException(owner + " holds address " + rs.getString(1) + " already");
            }
            return rs.getString(1);
          }
        }
      }
      List<String> used = new ArrayList<>();
      try (PreparedStatement ps = db.prepareStatement("SELECT ip FROM leases WHERE ip LIKE ? FOR UPDATE")) {
        ps.setString(1, range + "%");
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            used.add(rs.getString(1));
          }
        }
      }
      for (int i = 2; i < 255; i++) {
        if (!used.contains(range + i)) {
          insert(db, range + i, owner, kind, host);
          return range + i;
        }
      }
      throw new IllegalStateException("no free address left in " + range + "0/24 (" + used.size() + " leased; see: ferry leases)");
    });
  }

  /** Leases one given address; fails if anybody else holds it. */
  public void leaseExact(String ip, String owner, String kind, String host) {
    store.inTransaction(db -> {
      Lease now = find(db, ip);
      if (now != null && !now.owner().equals(owner)) {
        throw new IllegalStateException("address " + ip + " is leased to " + now.owner() + " already");
      }
      if (now == null) {
        insert(db, ip, owner, kind, host);
      }
      return null;
    });
  }

  /**
   * Changes which host may answer for {@code ip}: null when its holder let go of it, then the
   * new host. Refuses to give it to a host while another one still holds it.
   */
  public void moveTo(String ip, String toHost) {
    store.inTransaction(db -> {
      Lease now = find(db, ip);
      if (now == null) {
        return null; // not managed (a pod from before the IPAM): nothing to follow
      }
      if (toHost != null && now.host() != null && !now.host().equals(toHost)) {
        throw new IllegalStateException("address " + ip + " is still held by " + now.host() + ": it must let go before "
            + toHost + " takes it");
      }
      setHost(db, ip, toHost);
      return null;
    });
  }

  /**
   * Records a hand-over that happened: {@code fromHost} let go of {@code ip} and {@code toHost}
   * took it, and the placeholder's temporary address ({@code placeholderOwner}'s lease) ended,
   * all in one transaction. Refuses if a third host holds the address.
   */
  public void handOver(String ip, String fromHost, String toHost, String placeholderOwner) {
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("DELETE FROM leases WHERE owner=?")) {
        ps.setString(1, placeholderOwner);
        ps.executeUpdate();
      }
      Lease now = find(db, ip);
      if (now == null) {
        return null; // not managed (a pod from before the IPAM): nothing to follow
      }
      if (now.host() != null && !now.host().equals(fromHost) && !now.host().equals(toHost)) {
        throw new IllegalStateException("address " + ip + " is held by " + now.host() + ", not by " + fromHost
            + " which handed it over to " + toHost);
      }
      setHost(db, ip, toHost);
      return null;
    });
  }

  private static void setHost(java.sql.Connection db, String ip, String host) throws java.sql.SQLException {
    try (PreparedStatement ps = db.prepareStatement("UPDATE leases SET host=? WHERE ip=?")) {
      ps.setString(1, host);
      ps.setString(2, ip);
      ps.executeUpdate();
    }
  }

  /** Ends every lease of {@code owner}. Idempotent. */
  public void release(String owner) {
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("DELETE FROM leases WHERE owner=?")) {
        ps.setString(1, owner);
        ps.executeUpdate();
      }
      return null;
    });
  }

  /** The lease of one address, if any. */
  public Lease find(String ip) {
    return store.inTransaction(db -> find(db, ip));
  }

  /** All leases, by address. */
  public List<Lease> leases() {
    return store.inTransaction(db -> {
      List<Lease> out = new ArrayList<>();
      try (PreparedStatement ps = db.prepareStatement("SELECT ip, owner, kind, host, since FROM leases ORDER BY ip");
          ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new Lease(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getLong(5)));
        }
      }
      return out;
    });
  }

  private static Lease find(java.sql.Connection db, String ip) throws SQLException {
    try (PreparedStatement ps = db.prepareStatement("SELECT ip, owner, kind, host, since FROM leases WHERE ip=? FOR UPDATE")) {
      ps.setString(1, ip);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? new Lease(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getLong(5)) : null;
      }
    }
  }

  private static void insert(java.sql.Connection db, String ip, String owner, String kind, String host) throws SQLException {
    try (PreparedStatement ps = db.prepareStatement("INSERT INTO leases (ip, owner, kind, host, since) VALUES (?,?,?,?,?)")) {
      ps.setString(1, ip);
      ps.setString(2, owner);
      ps.setString(3, kind);
      ps.setString(4, host);
      ps.setLong(5, System.currentTimeMillis());
      ps.executeUpdate();
    }
  }
}
