package dev.ferry.kubernetes.controller;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A migration's Pod objects, through the API: the placeholder on the target node (created
 * before anything is frozen, deleted again on rollback) and, once the engine committed, the
 * hand-over of the source's place to it. Every step is idempotent (it looks first whether it
 * already happened), so a restarted controller can replay it. Objects are changed with patches
 * that carry no resourceVersion, never read-modify-write: kubelets and workload controllers write
 * pods too (and a stale read-modify-write fails with 409).
 *
 * <p>Before the commit point the source is authoritative: the only undo is deleting the
 * placeholder, and the source Pod is not touched at all. After it the new pod holds the state
 * and the hand-over only goes forward: {@link #commit} is retried, never undone.
 */
final class PodHandover {
  private static final Logger LOG = LoggerFactory.getLogger(PodHandover.class);
  /** A ReplicaSet scaling down removes the pod with the lowest cost first; this is the lowest there is. */
  static final String DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";
  static final String LOWEST_COST = String.valueOf(Integer.MIN_VALUE);
  private static final PatchContext MERGE = PatchContext.of(PatchType.JSON_MERGE);

  private final KubernetesClient client;
  private final Duration readyTimeout;

  PodHandover(KubernetesClient client, Duration readyTimeout) {
    this.client = client;
    this.readyTimeout = readyTimeout;
  }

  /**
   * Creates {@code wanted} unless this migration's placeholder exists already (then returns it).
   *
   * @throws IllegalStateException when a pod of that name stands in for another pod
   */
  Pod createPlaceholder(Pod wanted) {
    String ns = wanted.getMetadata().getNamespace();
    Pod existing = client.pods().inNamespace(ns).withName(wanted.getMetadata().getName()).get();
    if (existing != null) {
      if (!Objects.equals(PlaceholderPod.sourceUid(existing), PlaceholderPod.sourceUid(wanted))) {
        throw new IllegalStateException("pod " + ns + "/" + wanted.getMetadata().getName()
            + " exists and is not this migration's placeholder");
      }
      return existing;
    }
    return client.pods().inNamespace(ns).resource(wanted).create();
  }

  /**
   * The undo of {@link #createPlaceholder}: deletes the placeholder {@code name} if it still
   * stands in for a pod of the PodMigration {@code migration} (never a pod that has taken the
   * source's place: that one has lost the {@link PlaceholderPod#FOR_LABEL} label).
   *
   * @return whether there was one to delete
   */
  boolean deletePlaceholder(String ns, String name, String migration) {
    Pod p = client.pods().inNamespace(ns).withName(name).get();
    if (p == null) {
      return false;
    }
    Map<String, String> labels = p.getMetadata().getLabels();
    String forWhat = p.getMetadata().getAnnotations() == null ? null
        : p.getMetadata().getAnnotations().get(PlaceholderPod.FOR_ANNOTATION);
    if (labels == null || !labels.containsKey(PlaceholderPod.FOR_LABEL) || forWhat == null
        || !forWhat.endsWith("/" + migration)) {
      LOG.warn("pod {}/{} is no placeholder of {} (any more): not deleting it", ns, name, migration);
      return false;
    }
    client.pods().inNamespace(ns).withName(name).delete();
    LOG.info("placeholder {}/{} deleted", ns, name);
    return true;
  }

  /**
   * The hand-over at the commit point (the engine restored the pod into the placeholder {@code
   * name} and the source is stopped). In this order, so that a ReplicaSet never counts fewer
   * pods than it wants and never removes the new one:
   *
   * <ol>
   *   <li>the source gets the lowest {@value #DELETION_COST} (a ReplicaSet that now sees one pod
   *       too many removes the source first);
   *   <li>wait until the placeholder is Ready (a ReplicaSet removes pods that are not Ready before
   *       it looks at the cost);
   *   <li>the placeholder takes the source's labels (Services now send it traffic) and owner
   *       references (its ReplicaSet counts it);
   *   <li>the source Pod object is deleted (if the ReplicaSet has not done so itself).
   * </ol>
   *
   * Idempotent: run again after a restart, it skips what happened.
   *
   * @throws IllegalStateException when the placeholder is gone or not Ready in time, naming what is left
   */
  void commit(String ns, String name) {
    Pod placeholder = client.pods().inNamespace(ns).withName(name).get();
    if (placeholder == null) {
      throw new IllegalStateException("the placeholder " + ns + "/" + name + " the pod was restored into is gone");
    }
    String sourceUid = PlaceholderPod.sourceUid(placeholder);
    String sourceName = placeholder.getMetadata().getAnnotations().get(PlaceholderPod.SOURCE_ANNOTATION);
    Pod source = sourceName == null ? null : client.pods().inNamespace(ns).withName(sourceName).get();
    if (source != null && !Objects.equals(source.getMetadata().getUid(), sourceUid)) {
      source = null; // a new pod of the same name: not ours to touch
    }
    if (source != null && !LOWEST_COST.equals(annotation(source, DELETION_COST))) {
      client.pods().inNamespace(ns).withName(sourceName).patch(MERGE,
          json(Map.of("metadata", Map.of("annotations", Map.of(DELETION_COST, LOWEST_COST)))));
    }
    awaitReady(ns, name, sourceName);
    if (placeholder.getMetadata().getLabels() != null
        && placeholder.getMetadata().getLabels().containsKey(PlaceholderPod.FOR_LABEL)) {
      // a JSON patch that sets both whole: the placeholder's own label goes (it is the pod now), and
      // so would a label someone else put on the placeholder meanwhile
      client.pods().inNamespace(ns).withName(name).patch(PatchContext.of(PatchType.JSON), "[{\"op\":\"add\","
          + "\"path\":\"/metadata/labels\",\"value\":" + json(PlaceholderPod.labelsAtCommit(placeholder)) + "},"
          + "{\"op\":\"add\",\"path\":\"/metadata/ownerReferences\",\"value\":"
          + Serialization.asJson(PlaceholderPod.ownersAtCommit(placeholder)) + "}]");
      LOG.info("pod {}/{} took the labels and owners of {}", ns, name, sourceName);
    }
    if (source != null) {
      client.pods().inNamespace(ns).withName(sourceName).delete();
      LOG.info("source pod {}/{} deleted", ns, sourceName);
    }
  }

  private void awaitReady(String ns, String name, String sourceName) {
    long deadline = System.nanoTime() + readyTimeout.toNanos();
    while (true) {
      Pod p = client.pods().inNamespace(ns).withName(name).get();
      if (p == null) {
        throw new IllegalStateException("the placeholder " + ns + "/" + name + " the pod was restored into is gone");
      }
      if (ready(p)) {
        return;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("pod " + ns + "/" + name + " was not Ready " + readyTimeout.toSeconds() + " s after"
            + " the commit point, so it did not take the place of " + sourceName + " (labels, owner): the pod runs in "
            + name + "; the source Pod object " + sourceName + " is left, marked first to go on a scale-down");
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for " + ns + "/" + name + " to be Ready", e);
      }
    }
  }

  static boolean ready(Pod p) {
    return p.getStatus() != null && "Running".equals(p.getStatus().getPhase()) && p.getStatus().getConditions().stream()
        .anyMatch((PodCondition c) -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }

  private static String annotation(Pod p, String key) {
    Map<String, String> a = p.getMetadata().getAnnotations();
    return a == null ? null : a.get(key);
  }

  private static String json(Object o) {
    try {
      return new ObjectMapper().writeValueAsString(o);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
