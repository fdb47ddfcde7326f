package dev.ferry.kubernetes.controller;

import java.time.Duration;
import java.util.Objects;

/**
 * The controller's settings for the Pod objects of a migration (see {@link PodHandover}).
 *
 * @param ipAnnotation the static-IP annotation put on placeholders when the MigrationPolicy names
 *     none (e.g. {@code cni.projectcalico.org/ipAddrs}); null or "none": the moved pod gets a new IP
 * @param readyTimeout how long the hand-over waits for the restored placeholder to be Ready before
 *     it gives the source's place to it
 */
public record HandoverSettings(String ipAnnotation, Duration readyTimeout) {
  public HandoverSettings {
    ipAnnotation = orNone(ipAnnotation);
    Objects.requireNonNull(readyTimeout, "readyTimeout");
  }

  /** The static-IP annotation for a pod whose MigrationPolicy names {@code policys} (null: it names none). */
  String ipAnnotationFor(String policys) {
    return policys != null ? orNone(policys) : ipAnnotation;
  }

  private static String orNone(String a) {
    return a == null || a.isBlank() || a.equals("none") ? null : a;
  }

  /** No static IP; two minutes for the new pod to become Ready. */
  public static HandoverSettings defaults() {
    return new HandoverSettings(null, Duration.ofMinutes(2));
  }
}
