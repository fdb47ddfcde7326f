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

  /** The embedded coordinator of a lab that is up, pods getting addresses from its pod range. */
  public static Coordinator coordinator(Lab lab, MigrationStore store) {
    return new Coordinator(store, new LabHosts(lab), lab.config().networkPrefix() + ".1.", lab.config().prefixLength());
  }
}
