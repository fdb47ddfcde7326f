package dev.ferry.cli.kube;

import java.util.Set;
import java.util.regex.Pattern;

/** A pod named as kubectl names it: {@code pod/NAME} (also {@code pods/} and {@code po/}). */
record PodRef(String name) {
  private static final Set<String> POD_TYPES = Set.of("pod", "pods", "po");
  /** A DNS subdomain, as Kubernetes requires of a pod's name. */
  private static final Pattern NAME = Pattern.compile("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");

  /** Parses {@code ref}, with an error that says what is wrong and how it should look. */
  static PodRef parse(String ref) {
    int slash = ref.indexOf('/');
    if (slash < 0) {
      throw new IllegalArgumentException("'" + ref + "' is not a pod reference: write pod/NAME, e.g. pod/" + example(ref));
    }
    String type = ref.substring(0, slash);
    String name = ref.substring(slash + 1);
    if (!POD_TYPES.contains(type.toLowerCase())) {
      throw new IllegalArgumentException("'" + ref + "' is a " + type + ", not a pod: Ferry moves pods; write pod/NAME"
          + " (kubectl get pods lists them)");
    }
    if (name.isEmpty()) {
      throw new IllegalArgumentException("'" + ref + "' names no pod: write pod/NAME, e.g. pod/redis-0");
    }
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("'" + name + "' is not a valid pod name: lower-case letters, digits, '-' and '.'");
    }
    return new PodRef(name);
  }

  private static String example(String ref) {
    return NAME.matcher(ref).matches() ? ref : "redis-0";
  }
}
