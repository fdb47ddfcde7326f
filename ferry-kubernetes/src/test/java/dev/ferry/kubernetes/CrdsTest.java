package dev.ferry.kubernetes;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.api.model.apiextensions.v1.JSONSchemaProps;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CRDs in deploy/crds are what the model generates, and valid structural schemas. */
class CrdsTest {
  static final Path DEPLOYED = Path.of("..", "deploy", "crds");

  @TempDir Path tmp;

  @Test
  void deployCrdsAreExactlyWhatTheModelGenerates() throws Exception {
    CrdWriter.write(tmp);
    List<String> names;
    try (var s = Files.list(tmp)) {
      names = s.map(p -> p.getFileName().toString()).sorted().toList();
    }
    assertThat(names).containsExactly("migrationpolicies.ferry.dev-v1.yml", "nodedrains.ferry.dev-v1.yml",
        "podmigrations.ferry.dev-v1.yml");
    for (String n : names) {
      assertThat(Files.readString(DEPLOYED.resolve(n))).as(n + " (regenerate: CrdWriter ../deploy/crds)")
          .isEqualTo(Files.readString(tmp.resolve(n)));
    }
  }

  @Test
  void everyCrdIsAStructuralSchemaWithStatusAndPrinterColumns() throws Exception {
    for (String n : List.of("podmigrations", "nodedrains", "migrationpolicies")) {
      CustomResourceDefinition crd = Serialization.unmarshal(
          Files.readString(DEPLOYED.resolve(n + ".ferry.dev-v1.yml")), CustomResourceDefinition.class);
      assertThat(crd.getSpec().getGroup()).isEqualTo("ferry.dev");
      var version = crd.getSpec().getVersions().get(0);
      assertThat(version.getServed()).isTrue();
      assertThat(version.getStorage()).isTrue();
      JSONSchemaProps root = version.getSchema().getOpenAPIV3Schema();
      List<String> problems = new ArrayList<>();
      structural("", root, problems);
      assertThat(problems).as(n + ": not structural").isEmpty();
      if (!n.equals("migrationpolicies")) {
        assertThat(version.getSubresources().getStatus()).as(n + " has a status subresource").isNotNull();
        assertThat(version.getAdditionalPrinterColumns()).extracting("name").contains("Phase", "Age");
      }
    }
  }

  @Test
  void podMigrationRequiresAPodNameAndChecksTheStrategy() throws Exception {
    CustomResourceDefinition crd = Serialization.unmarshal(
        Files.readString(DEPLOYED.resolve("podmigrations.ferry.dev-v1.yml")), CustomResourceDefinition.class);
    JSONSchemaProps spec = crd.getSpec().getVersions().get(0).getSchema().getOpenAPIV3Schema().getProperties().get("spec");
    assertThat(spec.getRequired()).contains("podName");
    assertThat(spec.getProperties().get("strategy").getPattern()).contains("precopy").contains("hybrid");
    assertThat(spec.getProperties().get("maxFreezeMs").getMinimum()).isEqualTo(0.0);
  }

  /**
   * Kubernetes' structural-schema rules, as far as Ferry's schemas use them: every node has a
   * type; objects list their properties (or say they hold a map, or keep unknown fields);
   * arrays say what they hold.
   */
  private static void structural(String at, JSONSchemaProps s, List<String> problems) {
    if (s.getType() == null && !Boolean.TRUE.equals(s.getXKubernetesIntOrString())) {
      problems.add(at + ": no type");
      return;
    }
    switch (s.getType()) {
      case "object" -> {
        Map<String, JSONSchemaProps> props = s.getProperties();
        boolean map = s.getAdditionalProperties() != null && s.getAdditionalProperties().getSchema() != null;
        if ((props == null || props.isEmpty()) && !map && !Boolean.TRUE.equals(s.getXKubernetesPreserveUnknownFields())) {
          problems.add(at + ": object without properties");
        }
        if (props != null) {
          props.forEach((k, v) -> structural(at + "." + k, v, problems));
        }
        if (map) {
          structural(at + "[*]", s.getAdditionalProperties().getSchema(), problems);
        }
      }
      case "array" -> {
        if (s.getItems() == null || s.getItems().getSchema() == null) {
          problems.add(at + ": array without items");
        } else {
          structural(at + "[]", s.getItems().getSchema(), problems);
        }
      }
      default -> {
        // a scalar
      }
    }
  }
}
