package dev.ferry.cli.kube;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.jdkhttp.JdkHttpClientFactory;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/** What the Kubernetes commands share: the API client and the root command's options. */
final class Kube {
  private Kube() {}

  /**
   * A client found the way kubectl finds its cluster: in-cluster service account,
   * {@code $KUBECONFIG} or {@code ~/.kube/config}, in {@code context} if not null (else the
   * current one). JDK HTTP: with both fabric8 HTTP clients in the jar, fabric8 would pick one at
   * random.
   */
  static KubernetesClient client(String context) {
    Config config = Config.autoConfigure(context);
    return new KubernetesClientBuilder().withConfig(config).withHttpClientFactory(new JdkHttpClientFactory()).build();
  }

  /**
   * What went wrong talking to the API server at {@code server}, said so that the user knows
   * what to check: the connection (kubeconfig), their rights, or Ferry's CRDs missing.
   */
  static IllegalStateException apiError(KubernetesClientException e, String server) {
    int code = e.getCode();
    String said = e.getStatus() != null && e.getStatus().getMessage() != null ? e.getStatus().getMessage() : rootCause(e);
    String why;
    if (code <= 0) { // no HTTP answer at all (fabric8 says 0 or -1)
      why = "cannot reach the Kubernetes API server at " + server + " (" + rootCause(e) + "); check $KUBECONFIG,"
          + " ~/.kube/config or --context";
    } else if (code == 401 || code == 403) {
      why = "the API server at " + server + " refused (HTTP " + code + "): " + said + "; your kubeconfig user needs"
          + " rights on pods, nodes and ferry.dev's resources";
    } else if (code == 404 && said.contains("ferry.dev")) {
      why = "the API server at " + server + " has no Ferry resources (" + said + "); install the CRDs: kubectl apply -f"
          + " deploy/crds/";
    } else {
      why = "the API server at " + server + " answered HTTP " + code + ": " + said;
    }
    return new IllegalStateException(why, e);
  }

  private static String rootCause(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c.getMessage() != null ? c.getClass().getSimpleName() + ": " + c.getMessage() : c.getClass().getSimpleName();
  }

  /** The lab the root command's {@code --lab} names (given before or after the subcommand). */
  static String lab(CommandSpec spec) {
    OptionSpec o = spec.findOption("--lab");
    if (o == null) {
      o = spec.root().findOption("--lab");
    }
    if (o == null || o.getValue() == null) {
      throw new IllegalArgumentException("no lab given: use --lab NAME or set $FERRY_LAB");
    }
    return o.getValue();
  }
}
