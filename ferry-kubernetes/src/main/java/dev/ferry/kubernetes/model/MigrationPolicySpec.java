package dev.ferry.kubernetes.model;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import java.util.Map;

/** The defaults a policy gives, and the pods (and namespaces) it gives them to. */
public class MigrationPolicySpec {
  @JsonPropertyDescription("labels a pod must have for the policy to apply (empty: every pod)")
  public Map<String, String> podSelector;

  @JsonPropertyDescription("labels the pod's namespace must have (empty: any namespace)")
  public Map<String, String> namespaceSelector;

  @Pattern("^(auto|cold|precopy|postcopy|hybrid)$")
  public String strategy;

  @Min(0)
  @Max(3600000)
  public Long maxFreezeMs;

  @Min(0)
  @Max(1000000)
  public Long bandwidthMBps;

  public Boolean allowPostcopy;

  @Pattern("^(none|([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
  @JsonPropertyDescription("annotation that asks the cluster's IPAM for a pod's IP, put on the placeholder pod with the"
      + " source's IP: cni.projectcalico.org/ipAddrs (Calico) or ovn.kubernetes.io/ip_address (Kube-OVN); none: the"
      + " moved pod gets a new IP (default: the controller's --ip-annotation, else none)")
  public String podIpAnnotation;

  @Min(1)
  @Max(64)
  @JsonPropertyDescription("migrations at once per source node")
  public Integer parallelismPerNode;
}
