package dev.ferry.migration;

import dev.ferry.agent.AgentClient;
import java.util.List;

/** Where the coordinator finds hosts and their agents (the lab, or later a cluster). */
public interface HostDirectory {
  /** Names of all hosts. */
  List<String> hosts();

  /** A client of that host's agent; the caller closes it. */
  AgentClient connect(String host);
}
