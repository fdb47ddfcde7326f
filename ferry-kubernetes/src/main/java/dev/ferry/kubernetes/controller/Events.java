package dev.ferry.kubernetes.controller;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Instant;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Kubernetes Events on Ferry's resources: what {@code kubectl describe} shows of a migration. */
final class Events {
  private static final Logger LOG = LoggerFactory.getLogger(Events.class);
  private final KubernetesClient client;

  Events(KubernetesClient client) {
    this.client = client;
  }

  void record(HasMetadata about, String reason, String message) {
    String ns = about.getMetadata().getNamespace() != null ? about.getMetadata().getNamespace() : "default";
    String now = Instant.now().toString();
    try {
      client.v1().events().inNamespace(ns).resource(new EventBuilder()
          .withNewMetadata().withName(about.getMetadata().getName() + "." + UUID.randomUUID().toString().substring(0, 8))
          .withNamespace(ns).endMetadata()
          .withNewInvolvedObject().withApiVersion(about.getApiVersion()).withKind(about.getKind())
          .withName(about.getMetadata().getName()).withNamespace(about.getMetadata().getNamespace())
          .withUid(about.getMetadata().getUid()).endInvolvedObject()
          .withReason(reason).withMessage(message).withType(reason.equals("Failed") ? "Warning" : "Normal")
          .withFirstTimestamp(now).withLastTimestamp(now).withCount(1)
          .withNewSource().withComponent("ferry-controller").endSource()
          .build()).create();
    } catch (RuntimeException e) {
      LOG.debug("cannot record event {} on {}: {}", reason, about.getMetadata().getName(), e.getMessage());
    }
  }
}
