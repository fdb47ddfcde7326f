package dev.ferry.migration;

import dev.ferry.api.PodSpec;

/**
 * The coordinator's record of a pod: its identity lives in the spec, {@code host} is the
 * one host that owns it. Changed only at a migration's commit point.
 *
 * @param spec the pod and its identity
 * @param host the host it runs on
 * @param state "running", "starting" or "migrating"
 */
public record PodRecord(PodSpec spec, String host, String state) {
  public String name() {
    return spec.identity().name();
  }
}
