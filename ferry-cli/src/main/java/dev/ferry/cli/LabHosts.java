package dev.ferry.cli;

import dev.ferry.agent.AgentClient;
import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.migration.Coordinator;
import dev.ferry.migration.HostDirectory;
import dev.ferry.migration.MigrationStore;
import java.util.List;

/** The hosts of a lab, as the coordinator sees them. */
public final class LabHosts implements HostDirectory {
  private final Lab lab;

  public LabHosts(Lab lab) {
    this.lab = lab;
  }

  @Override
  public List<String> hosts() {
    return lab.config().hosts().stream().map(LabConfig.HostEntry::name).toList();
  }

  @Override
  public AgentClient connect(String host) {
    return lab.client(host);
  }

  /**
   * The embedded coordinator of a lab that is up: pods get addresses from its pod range, VIPs
   * are served in its client namespace, and each host's capacity is the one set at lab up.
   */
  public static Coordinator coordinator(Lab lab, MigrationStore store) {
    Coordinator c = new Coordinator(store, new LabHosts(lab), lab.config().podRange(), lab.config().prefixLength(),
        new LabServices(lab.config()), new LabDisks(lab.config()));
    for (LabConfig.HostEntry h : lab.config().hosts()) {
      c.capacity().defineHost(h.name(), h.memoryCapacityMiB(), h.slots());
    }
    return c;
  }
}
