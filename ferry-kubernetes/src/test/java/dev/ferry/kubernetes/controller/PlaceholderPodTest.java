package dev.ferry.kubernetes.controller;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodIPBuilder;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What the placeholder copies from the source pod and what it must not (hermetic: no API server). */
class PlaceholderPodTest {
  static final OwnerReference RS = new OwnerReferenceBuilder().withApiVersion("apps/v1").withKind("ReplicaSet")
      .withName("web-7d9f8").withUid("rs-uid").withController(true).withBlockOwnerDeletion(true).build();

  static Pod source() {
    return new PodBuilder().withNewMetadata().withName("web-7d9f8-x1").withNamespace("apps").withUid("src-uid")
        .withLabels(Map.of("app", "web", "pod-template-hash", "7d9f8")).withOwnerReferences(RS)
        .withAnnotations(Map.of("team", "payments", "cni.projectcalico.org/podIP", "10.1.2.3/32",
            "cni.projectcalico.org/containerID", "abc", "ovn.kubernetes.io/allocated", "true",
            "k8s.v1.cni.cncf.io/network-status", "[]", "kubernetes.io/config.seen", "x",
            "controller.kubernetes.io/pod-deletion-cost", "5"))
        .endMetadata()
        .withNewSpec().withNodeName("node-a").withPriorityClassName("high").withPriority(1000)
        .withPreemptionPolicy("PreemptLowerPriority").withNodeSelector(Map.of("disk", "ssd"))
        .addNewContainer().withName("app").withImage("redis:7").withArgs("--appendonly", "yes")
        .addNewVolumeMount().withName("data").withMountPath("/data").endVolumeMount()
        .withNewReadinessProbe().withNewTcpSocket().withNewPort(6379).endTcpSocket().endReadinessProbe().endContainer()
        .addNewVolume().withName("data").withNewPersistentVolumeClaim().withClaimName("web-data").endPersistentVolumeClaim()
        .endVolume()
        .addNewEphemeralContainer().withName("debug").withImage("busybox").endEphemeralContainer()
        .endSpec()
        .withNewStatus().withPodIP("10.1.2.3").withPodIPs(new PodIPBuilder().withIp("10.1.2.3").build(),
            new PodIPBuilder().withIp("fd00::3").build()).endStatus()
        .build();
  }

  @Test
  void itCopiesTheSpecOntoTheTargetNodeAndLeavesOutWhatAdmissionFillsIn() {
    Pod p = PlaceholderPod.build(source(), "web-7d9f8-x1-ferry-abcde", "node-b", "move-web", null);
    assertThat(p.getMetadata().getNamespace()).isEqualTo("apps");
    assertThat(p.getSpec().getNodeName()).isEqualTo("node-b");
    assertThat(p.getSpec().getContainers()).isEqualTo(source().getSpec().getContainers());
    assertThat(p.getSpec().getVolumes()).isEqualTo(source().getSpec().getVolumes());
    assertThat(p.getSpec().getNodeSelector()).isEqualTo(Map.of("disk", "ssd"));
    assertThat(p.getSpec().getPriorityClassName()).isEqualTo("high");
    assertThat(p.getSpec().getPriority()).isNull();
    assertThat(p.getSpec().getPreemptionPolicy()).isNull();
    assertThat(p.getSpec().getEphemeralContainers()).isNullOrEmpty();
    assertThat(p.getSpec().getHostname()).as("the host name the app saw").isEqualTo("web-7d9f8-x1");
  }

  @Test
  void itHasNoneOfTheSourcesLabelsOrOwnersButKeepsThemForTheCommitPoint() {
    Pod p = PlaceholderPod.build(source(), "web-7d9f8-x1-ferry-abcde", "node-b", "move-web", null);
    assertThat(p.getMetadata().getLabels()).containsExactly(Map.entry(PlaceholderPod.FOR_LABEL, "src-uid"));
    assertThat(p.getMetadata().getOwnerReferences()).isEmpty();
    assertThat(PlaceholderPod.labelsAtCommit(p)).isEqualTo(source().getMetadata().getLabels());
    assertThat(PlaceholderPod.ownersAtCommit(p)).containsExactly(RS);
    assertThat(PlaceholderPod.sourceUid(p)).isEqualTo("src-uid");
    assertThat(p.getMetadata().getAnnotations()).containsEntry(PlaceholderPod.FOR_ANNOTATION, "src-uid/move-web")
        .containsEntry(PlaceholderPod.SOURCE_ANNOTATION, "web-7d9f8-x1");
  }

  @Test
  void itCopiesTheUsersAnnotationsButNotWhatTheCniIpamOrKubeletWroteAboutTheSource() {
    Map<String, String> a = PlaceholderPod.build(source(), "x-ferry-abcde", "node-b", "m", null).getMetadata()
        .getAnnotations();
    assertThat(a).containsEntry("team", "payments");
    assertThat(a.keySet()).noneMatch(k -> k.startsWith("cni.projectcalico.org/") || k.startsWith("ovn.kubernetes.io/")
        || k.startsWith("k8s.v1.cni.cncf.io/") || k.startsWith("kubernetes.io/config.") || k.contains("deletion-cost"));
  }

  @Test
  void theSourcesIpsGoUnderTheStaticIpAnnotationInTheFormItsIpamReads() {
    assertThat(PlaceholderPod.build(source(), "x-ferry-abcde", "node-b", "m", "cni.projectcalico.org/ipAddrs")
        .getMetadata().getAnnotations()).containsEntry("cni.projectcalico.org/ipAddrs", "[\"10.1.2.3\",\"fd00::3\"]");
    assertThat(PlaceholderPod.build(source(), "x-ferry-abcde", "node-b", "m", "ovn.kubernetes.io/ip_address")
        .getMetadata().getAnnotations()).containsEntry("ovn.kubernetes.io/ip_address", "10.1.2.3,fd00::3");
    Pod noIp = source();
    noIp.setStatus(null);
    assertThatThrownBy(() -> PlaceholderPod.build(noIp, "x-ferry-abcde", "node-b", "m", "ovn.kubernetes.io/ip_address"))
        .hasMessageContaining("apps/web-7d9f8-x1 has no IP in its status yet");
  }

  @Test
  void aPolicysIpAnnotationWinsOverTheControllersAndNoneTurnsItOff() {
    HandoverSettings ovn = new HandoverSettings("ovn.kubernetes.io/ip_address", Duration.ofSeconds(1));
    assertThat(ovn.ipAnnotationFor(null)).isEqualTo("ovn.kubernetes.io/ip_address");
    assertThat(ovn.ipAnnotationFor("cni.projectcalico.org/ipAddrs")).isEqualTo("cni.projectcalico.org/ipAddrs");
    assertThat(ovn.ipAnnotationFor("none")).isNull();
    assertThat(new HandoverSettings("none", Duration.ofSeconds(1)).ipAnnotationFor(null)).isNull();
    assertThat(HandoverSettings.defaults().ipAnnotation()).isNull();
  }

  @Test
  void itsNameIsStableForOneMigrationAndAValidPodName() {
    assertThat(PlaceholderPod.name("redis", "0f3a9c12-aaaa-bbbb")).isEqualTo("redis-ferry-0f3a9");
    assertThat(PlaceholderPod.name("r".repeat(253), "0f3a9c12")).hasSize(253).endsWith("-ferry-0f3a9");
  }

  @Test
  void ownersFerryCannotHandOverAreRefusedWithTheReason() {
    assertThat(PodOwnership.refusal(source())).isEmpty();
    assertThat(PodOwnership.replicaSetOwned(source())).isTrue();
    assertThat(PodOwnership.refusal(owned("StatefulSet"))).get().asString().contains("StatefulSet db", "by their name");
    assertThat(PodOwnership.refusal(owned("DaemonSet"))).get().asString().contains("DaemonSet db", "every node");
    assertThat(PodOwnership.refusal(owned("Job"))).get().asString().contains("Job db", "uid");
    assertThat(PodOwnership.refusal(owned("Rollout"))).get().asString().contains("Rollout db", "does not know");
    Pod host = source();
    host.getSpec().setHostNetwork(true);
    assertThat(PodOwnership.refusal(host)).get().asString().contains("hostNetwork");
    Pod placeholder = PlaceholderPod.build(source(), "x-ferry-abcde", "node-b", "m", null);
    assertThat(PodOwnership.refusal(placeholder)).get().asString().contains("placeholder");
  }

  static Pod owned(String kind) {
    Pod p = source();
    p.getMetadata().setOwnerReferences(List.of(new OwnerReferenceBuilder().withApiVersion("apps/v1").withKind(kind)
        .withName("db").withUid("u").withController(true).build()));
    return p;
  }
}
