package dev.ferry.migration;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;

/**
 * Service VIPs: a VIP (leased from the IPAM) and a port that forward, in the kernel, to one
 * pod on its current host. The record says which host the backend is on; a migration moves
 * it at cutover (step {@code switch-vip}) and back on rollback.
 */
public final class Services {
  /** One service: {@code vip:port} forwards to pod {@code pod} on {@code backendHost}. */
  public record Service(String name, String vip, int port, String pod, String backendHost) {}

  private final MigrationStore store;
  private final Ipam ipam;
  private final ServiceNetwork network;

  public Services(MigrationStore store, Ipam ipam, ServiceNetwork network) {
    this.store = store;
    this.ipam = ipam;
    this.network = network;
  }

  /** Publishes {@code pod} (running on {@code host} at {@code podIp}) as service {@code name} on a new VIP. */
  public Service create(String name, String pod, String podIp, String host, int port) {
    if (!name.matches("[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?")) {
      throw new IllegalArgumentException("service name '" + name + "' is invalid: 1-32 lower-case letters, digits and '-'");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port " + port + " is out of range (1 .. 65535)");
    }
    if (find(name) != null) {
      throw new IllegalArgumentException("a service named '" + name + "' exists already");
    }
    String vip = ipam.lease(network.vipRange(), Ipam.serviceOwner(name), "vip", null);
    Service s = new Service(name, vip, port, pod, host);
    try {
      store.inTransaction(db -> {
        try (PreparedStatement ps = db.prepareStatement(
            "INSERT INTO services (name, vip, port, pod, backend_host) VALUES (?,?,?,?,?)")) {
          ps.setString(1, name);
          ps.setString(2, vip);
          ps.setInt(3, port);
          ps.setString(4, pod);
          ps.setString(5, host);
          ps.executeUpdate();
        }
        return null;
      });
      network.route(name, vip, port, podIp, host);
      return s;
    } catch (RuntimeException e) {
      remove(name);
      throw e;
    }
  }

  /** Whether {@code pod} is behind any VIP. */
  public boolean published(String pod) {
    return !ofPod(pod).isEmpty();
  }

  /**
   * Moves every service of {@code pod} to its backend on {@code host}: the record first, then
   * the kernel's rules when {@code kernel} (a pod keeps its IP when it moves, so the DNAT
   * target stays right and a migration can leave the rules' refresh for after its frozen window).
   */
  public List<Service> switchTo(String pod, String podIp, String host, boolean kernel) {
    List<Service> moved = new ArrayList<>();
    for (Service s : ofPod(pod)) {
      setBackend(s.name(), host);
      if (kernel) {
        network.route(s.name(), s.vip(), s.port(), podIp, host);
      }
      moved.add(new Service(s.name(), s.vip(), s.port(), pod, host));
    }
    return moved;
  }

  /** Rewrites the kernel's rules of {@code pod}'s services from their record. Idempotent. */
  public void refresh(String pod, String podIp) {
    for (Service s : ofPod(pod)) {
      network.route(s.name(), s.vip(), s.port(), podIp, s.backendHost());
    }
  }

  /** Removes a service: the kernel rules, the record and the VIP's lease. Idempotent. */
  public void remove(String name) {
    Service s = find(name);
    if (s != null) {
      network.remove(name, s.vip());
    }
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("DELETE FROM services WHERE name=?")) {
        ps.setString(1, name);
        ps.executeUpdate();
      }
      return null;
    });
    ipam.release(Ipam.serviceOwner(name));
  }

  public Service find(String name) {
    return list("WHERE name=?", name).stream().findFirst().orElse(null);
  }

  public List<Service> ofPod(String pod) {
    return list("WHERE pod=?", pod);
  }

  public List<Service> all() {
    return list("");
  }

  private void setBackend(String name, String host) {
    store.inTransaction(db -> {
      try (PreparedStatement ps = db.prepareStatement("UPDATE services SET backend_host=? WHERE name=?")) {
        ps.setString(1, host);
        ps.setString(2, name);
        ps.executeUpdate();
      }
      return null;
    });
  }

  private List<Service> list(String where, Object... args) {
    return store.inTransaction(db -> {
      List<Service> out = new ArrayList<>();
      try (PreparedStatement ps = db.prepareStatement(
          "SELECT name, vip, port, pod, backend_host FROM services " + where + " ORDER BY name")) {
        for (int i = 0; i < args.length; i++) {
          ps.setObject(i + 1, args[i]);
        }
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.add(new Service(rs.getString(1), rs.getString(2), rs.getInt(3), rs.getString(4), rs.getString(5)));
          }
        }
      }
      return out;
    });
  }
}
