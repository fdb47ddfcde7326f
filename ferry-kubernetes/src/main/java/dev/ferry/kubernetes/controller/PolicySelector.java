package dev.ferry.kubernetes.controller;

import dev.ferry.kubernetes.model.MigrationPolicy;
import dev.ferry.kubernetes.model.MigrationPolicySpec;
import dev.ferry.kubernetes.model.PodMigrationSpec;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Picks the {@link MigrationPolicy} that applies to a pod and merges it with a PodMigration's
 * own settings: the PodMigration's fields win, then the policy's, then Ferry's defaults.
 */
public final class PolicySelector {
  private PolicySelector() {}

  /**
   * What a migration will use, and the policy it came from (null if none); {@code podIpAnnotation}
   * is the policy's (null when it names none: the controller's default applies).
   */
  public record Effective(String strategy, long maxFreezeMs, long bandwidthMBps, boolean allowPostcopy, String policy,
      String podIpAnnotation) {}

  /**
   * The policy whose selectors match the pod's and its namespace's labels, naming the most
   * labels (the most specific); ties go to the first name in alphabetical order.
   */
  public static Optional<MigrationPolicy> select(List<MigrationPolicy> policies, Map<String, String> podLabels,
      Map<String, String> namespaceLabels) {
    return policies.stream()
        .filter(p -> p.getSpec() != null)
        .filter(p -> matches(p.getSpec().podSelector, podLabels) && matches(p.getSpec().namespaceSelector, namespaceLabels))
        .min(Comparator.<MigrationPolicy>comparingInt(p -> -(size(p.getSpec().podSelector) + size(p.getSpec().namespaceSelector)))
            .thenComparing(p -> p.getMetadata().getName()));
  }

  public static Effective merge(PodMigrationSpec spec, Optional<MigrationPolicy> policy) {
    MigrationPolicySpec p = policy.map(MigrationPolicy::getSpec).orElse(new MigrationPolicySpec());
    return new Effective(
        first(spec.strategy, p.strategy, "auto"),
        first(spec.maxFreezeMs, p.maxFreezeMs, 0L),
        first(spec.bandwidthMBps, p.bandwidthMBps, 0L),
        first(spec.allowPostcopy, p.allowPostcopy, false),
        policy.map(x -> x.getMetadata().getName()).orElse(null),
        p.podIpAnnotation);
  }

  static boolean matches(Map<String, String> selector, Map<String, String> labels) {
    if (selector == null || selector.isEmpty()) {
      return true;
    }
    Map<String, String> l = labels == null ? Map.of() : labels;
    return selector.entrySet().stream().allMatch(e -> e.getValue().equals(l.get(e.getKey())));
  }

  private static int size(Map<String, String> m) {
    return m == null ? 0 : m.size();
  }

  private static <T> T first(T a, T b, T dflt) {
    return a != null ? a : b != null ? b : dflt;
  }
}
