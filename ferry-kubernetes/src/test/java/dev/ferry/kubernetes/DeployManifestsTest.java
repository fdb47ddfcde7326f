package dev.ferry.kubernetes;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.kubernetes.controller.FerryOperator;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesList;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The manifests in deploy/ parse as Kubernetes objects and say what the README says they do. */
class DeployManifestsTest {
  static final Path DEPLOY = Path.of("..", "deploy");

  static List<HasMetadata> load(String file) throws Exception {
    List<HasMetadata> out = new ArrayList<>();
    for (String doc : Files.readString(DEPLOY.resolve(file)).split("(?m)^---\\s*$")) {
      if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
        Object o = Serialization.unmarshal(doc);
        if (o instanceof KubernetesList l) {
          out.addAll(l.getItems());
        } else {
          out.add((HasMetadata) o);
        }
      }
    }
    return out;
  }

  @Test
  void everyFileTheKustomizationNamesParses() throws Exception {
    @SuppressWarnings("unchecked")
    Map<String, Object> k = Serialization.unmarshal(Files.readString(DEPLOY.resolve("kustomization.yaml")), Map.class);
    @SuppressWarnings("unchecked")
    List<String> resources = (List<String>) k.get("resources");
    assertThat(resources).hasSize(7);
    List<String> kinds = new ArrayList<>();
    for (String r : resources) {
      assertThat(DEPLOY.resolve(r)).exists();
      load(r).forEach(o -> kinds.add(o.getKind()));
    }
    assertThat(kinds).contains("CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
        "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "DaemonSet");
  }

  @Test
  void theAgentRunsPrivilegedOnEveryNodeInTheHostsNamespaces() throws Exception {
    DaemonSet ds = (DaemonSet) load("agent-daemonset.yaml").get(0);
    var pod = ds.getSpec().getTemplate().getSpec();
    assertThat(pod.getHostPID()).isTrue();
    assertThat(pod.getHostNetwork()).isTrue();
    assertThat(pod.getContainers().get(0).getSecurityContext().getPrivileged()).isTrue();
    assertThat(pod.getContainers().get(0).getArgs()).startsWith("agent");
    assertThat(pod.getTolerations()).anyMatch(t -> "Exists".equals(t.getOperator()));
  }

  @Test
  void theControllerIsUnprivilegedAndItsRoleGrantsNoWildcards() throws Exception {
    Deployment d = (Deployment) load("controller.yaml").get(0);
    var c = d.getSpec().getTemplate().getSpec().getContainers().get(0);
    assertThat(c.getSecurityContext().getAllowPrivilegeEscalation()).isFalse();
    assertThat(c.getSecurityContext().getCapabilities().getDrop()).contains("ALL");
    ClusterRole role = load("rbac.yaml").stream().filter(o -> o instanceof ClusterRole).map(o -> (ClusterRole) o)
        .findFirst().orElseThrow();
    role.getRules().forEach(r -> {
      assertThat(r.getVerbs()).doesNotContain("*");
      assertThat(r.getResources()).doesNotContain("*");
      assertThat(r.getApiGroups()).doesNotContain("*");
    });
    assertThat(role.getRules()).anyMatch(r -> r.getResources().contains("podmigrations/status"));
  }

  @Test
  void theControllerMayCreatePatchAndDeletePodsButNotUpdateThemNorReadWorkloads() throws Exception {
    ClusterRole role = load("rbac.yaml").stream().filter(o -> o instanceof ClusterRole).map(o -> (ClusterRole) o)
        .findFirst().orElseThrow();
    List<String> podVerbs = role.getRules().stream()
        .filter(r -> r.getApiGroups().contains("") && r.getResources().contains("pods"))
        .flatMap(r -> r.getVerbs().stream()).toList();
    assertThat(podVerbs).as("placeholder created, patched at the commit point, deleted on rollback; source patched"
        + " and deleted").containsExactlyInAnyOrder("get", "list", "create", "patch", "delete");
    assertThat(role.getRules()).noneMatch(r -> r.getResources().contains("pods/status"));
    assertThat(role.getRules().stream().filter(r -> r.getApiGroups().contains("apps")))
        .as("of workloads only what setting a ReplicaSet's owner reference (blockOwnerDeletion) needs")
        .allSatisfy(r -> {
          assertThat(r.getResources()).containsExactly("replicasets/finalizers");
          assertThat(r.getVerbs()).containsExactly("update");
        });
  }

  @Test
  void theControllerRunsFerryControllerWithItsLeaseInItsOwnNamespaceAndTheRoleCoversThatLease() throws Exception {
    Deployment d = (Deployment) load("controller.yaml").get(0);
    var c = d.getSpec().getTemplate().getSpec().getContainers().get(0);
    List<String> args = c.getArgs();
    assertThat(args).first().isEqualTo("controller");
    assertThat(args.get(args.indexOf("--lease-namespace") + 1)).isEqualTo("$(POD_NAMESPACE)");
    assertThat(c.getEnv()).anySatisfy(e -> {
      assertThat(e.getName()).isEqualTo("POD_NAMESPACE");
      assertThat(e.getValueFrom().getFieldRef().getFieldPath()).isEqualTo("metadata.namespace");
    });
    assertThat(d.getSpec().getReplicas()).as("replicas: one leader, one standing by").isGreaterThan(1);
    Role role = load("rbac.yaml").stream().filter(o -> o instanceof Role).map(o -> (Role) o).findFirst().orElseThrow();
    assertThat(role.getMetadata().getNamespace()).isEqualTo(d.getMetadata().getNamespace());
    List<String> verbs = role.getRules().stream()
        .filter(r -> r.getApiGroups().contains("coordination.k8s.io") && r.getResources().contains("leases"))
        .filter(r -> r.getResourceNames().isEmpty() || r.getResourceNames().contains(FerryOperator.LEASE_NAME))
        .flatMap(r -> r.getVerbs().stream()).toList();
    assertThat(verbs).as("what JOSDK checks before it starts leader election").contains("get", "create", "update");
    RoleBinding binding = load("rbac.yaml").stream().filter(o -> o instanceof RoleBinding).map(o -> (RoleBinding) o)
        .findFirst().orElseThrow();
    assertThat(binding.getSubjects().get(0).getName()).isEqualTo(d.getSpec().getTemplate().getSpec().getServiceAccountName());
  }
}
