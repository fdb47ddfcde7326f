package dev.ferry.kubernetes.model;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * A request to move one running pod to another node with its memory, connections and identity:
 * the Kubernetes face of a Ferry migration (like KubeVirt's VirtualMachineInstanceMigration).
 * The controller writes each phase to {@code status} before acting on it.
 */
@Group(Api.GROUP)
@Version(Api.VERSION)
@ShortNames("pm")
@AdditionalPrinterColumn(name = "Pod", jsonPath = ".spec.podName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Target", jsonPath = ".status.targetNode", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Strategy", jsonPath = ".status.strategy", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Frozen-ms", jsonPath = ".status.frozenMs", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class PodMigration extends CustomResource<PodMigrationSpec, PodMigrationStatus> implements Namespaced {}
