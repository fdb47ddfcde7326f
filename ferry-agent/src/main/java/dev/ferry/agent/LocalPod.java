package dev.ferry.agent;

import dev.ferry.api.PodSpec;

/**
 * A pod as this agent records it on disk (pods/NAME/pod.json), written before acting.
 *
 * @param spec the pod
 * @param state running | checkpointed | placeholder | received | restored
 * @param migrationId the migration this pod takes part in, or null
 * @param identityReleased true once a source let go of the pod's IP and MAC
 */
public record LocalPod(PodSpec spec, String state, String migrationId, boolean identityReleased) {
  public String name() {
    return spec.identity().name();
  }

  public LocalPod withState(String newState, String migration) {
    return new LocalPod(spec, newState, migration, identityReleased);
  }

  public LocalPod withIdentityReleased(boolean released) {
    return new LocalPod(spec, state, migrationId, released);
  }
}
