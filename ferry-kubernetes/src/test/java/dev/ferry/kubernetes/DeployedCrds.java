package dev.ferry.kubernetes;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Ferry's CRDs as {@code deploy/crds} ships them, for tests' API servers. */
public final class DeployedCrds {
  private DeployedCrds() {}

  /** Creates the PodMigration, NodeDrain and MigrationPolicy CRDs from {@code ../deploy/crds}. */
  public static void install(KubernetesClient client) {
    for (String crd : List.of("podmigrations", "nodedrains", "migrationpolicies")) {
      Path p = Path.of("..", "deploy", "crds", crd + ".ferry.dev-v1.yml");
      try {
        client.apiextensions().v1().customResourceDefinitions()
            .resource(Serialization.unmarshal(Files.readString(p), CustomResourceDefinition.class)).create();
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read " + p.toAbsolutePath() + " (run from the ferry-kubernetes module)", e);
      }
    }
  }
}
