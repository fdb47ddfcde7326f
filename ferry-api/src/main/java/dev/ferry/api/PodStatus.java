package dev.ferry.api;

import java.util.List;

/**
 * A pod as one agent sees it.
 *
 * @param spec what was asked for
 * @param host the agent's host
 * @param state running, checkpointed, placeholder, stopped
 * @param containers state of each container, sandbox first
 */
public record PodStatus(PodSpec spec, String host, String state, List<ContainerState> containers) {
  /**
   * One runc container: id, runc status ("running", "stopped", "missing"), pid, and the
   * resident memory of its processes (what a checkpoint has to move).
   */
  public record ContainerState(String name, String id, String status, long pid, long rssBytes) {}

  /** Resident memory of the app containers (the sandbox's pause process is negligible; runsc pods have none). */
  public long appRssBytes() {
    return containers.stream().filter(c -> !"pause".equals(c.name())).mapToLong(ContainerState::rssBytes).sum();
  }

  public boolean running() {
    return "running".equals(state)
        && containers.stream().allMatch(c -> "running".equals(c.status()));
  }
}
