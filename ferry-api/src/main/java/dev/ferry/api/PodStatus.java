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
  /** One runc container: id, runc status ("running", "stopped", "missing") and pid. */
  public record ContainerState(String name, String id, String status, long pid) {}

  public boolean running() {
    return "running".equals(state)
        && containers.stream().allMatch(c -> "running".equals(c.status()));
  }
}
