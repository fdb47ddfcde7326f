package dev.ferry.migration;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;

/**
 * Network disks (remote volumes that may be attached to one host at a time), recorded in the
 * coordinator's store. Attaching records the new host first, and only if no host holds the
 * disk (compare-and-set); detaching acts first, then records. So the record never shows two
 * hosts, and a crash between the two halves leaves the disk looking attached, never free
 * while still mounted.
 */
public final class Disks {
  /** A disk and the host it is attached to (null: none). */
  public record Disk(String name, String host) {}

  private final MigrationStore store;
  private final DiskBackend backend;

  public Disks(MigrationStore store, DiskBackend backend) {
    this.store = store;
    this.backend = backend;
  }

  public DiskBackend backend() {
    return backend;
  }

  /** Creates a disk, attached nowhere. */
  public Disk create(String name) {
    if (!name.matches("[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?")) {
      throw new IllegalArgumentException("disk name '" + name + "' is invalid: 1-32 lower-case letters, digits and '-'");
    }
    if (find(name) != null) {
      throw new IllegalArgumentException("a disk named '" + name + "' exists already");
    }
    backend.create(name);
    update("INSERT INTO disks (name, host) VALUES (?, NULL)", name);
    return new Disk(name, null);
  }

  /**
   * Attaches a disk to {@code host}; idempotent when it is attached there already.
   *
   * @throws IllegalStateException when another host holds it
   */
  public void attach(String name, String host) {
    boolean mine = store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("SELECT host FROM disks WHERE name=? FOR UPDATE")) {
        ps.setString(1, name);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            throw new IllegalArgumentException("unknown disk '" + name + "'; see: ferry disk ls");
          }
          String now = rs.getString(1);
          if (now != null && !now.equals(host)) {
            throw new IllegalStateException("disk " + name + " is attached to " + now + "; it must be detached there before "
                + host + " can attach it");
          }
        }
      }
      try (PreparedStatement ps = db.prepareStatement("UPDATE disks SET host=? WHERE name=?")) {
        ps.setString(1, host);
        ps.setString(2, name);
        ps.executeUpdate();
      }
      return true;
    });
    if (mine) {
      backend.attach(name, host);
    }
  }

  /** Detaches a disk from {@code host} (then records it free). Idempotent. */
  public void detach(String name, String host) {
    Disk d = find(name);
    if (d == null || (d.host() != null && !d.host().equals(host))) {
      return; // not there: nothing to do
    }
    backend.detach(name, host);
    update("UPDATE disks SET host=NULL WHERE name=? AND host=?", name, host);
  }

  /** Deletes a disk that no host holds. */
  public void remove(String name) {
    Disk d = find(name);
    if (d == null) {
      throw new IllegalArgumentException("unknown disk '" + name + "'");
    }
    if (d.host() != null) {
      throw new IllegalStateException("disk " + name + " is attached to " + d.host() + "; remove its pod first");
    }
    backend.delete(name);
    update("DELETE FROM disks WHERE name=?", name);
  }

  public Disk find(String name) {
    return list("WHERE name=?", name).stream().findFirst().orElse(null);
  }

  public List<Disk> all() {
    return list("");
  }

  private List<Disk> list(String where, Object... args) {
    return store.inTransaction(db -> {
      List<Disk> out = new ArrayList<>();
      try (PreparedStatement ps = db.prepareStatement("SELECT name, host FROM disks " + where + " ORDER BY name")) {
        for (int i = 0; i < args.length; i++) {
          ps.setObject(i + 1, args[i]);
        }
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.add(new Disk(rs.getString(1), rs.getString(2)));
          }
        }
      }
      return out;
    });
  }

  private void update(String sql, Object... args) {
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement(sql)) {
        for (int i = 0; i < args.length; i++) {
          ps.setObject(i + 1, args[i]);
        }
        ps.executeUpdate();
      }
      return null;
    });
  }
}
