package dev.ferry.cli.kube;

import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code ferry kube cancel NAME}: sets the PodMigration's {@code spec.cancel}; the controller
 * stops the migration if it has not reached its commit point. With {@code --wait}, follows it
 * until it ends (exit 0 when it RolledBack, 1 otherwise: it got past the commit point first).
 */
@Command(name = "cancel", mixinStandardHelpOptions = true,
    description = "Cancels a PodMigration before its commit point (sets spec.cancel); --wait follows it until it ends.")
final class KubeCancelCommand implements Callable<Integer> {
  @ParentCommand KubeCommand kube;
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "NAME", description = "the PodMigration's name")
  String name;

  @picocli.CommandLine.Mixin WaitOptions waiting = new WaitOptions();

  @Override
  public Integer call() throws InterruptedException {
    try (KubernetesClient client = kube.client()) {
      String ns = kube.namespace(client);
      var pms = client.resources(PodMigration.class).inNamespace(ns);
      PodMigration pm = pms.withName(name).get();
      if (pm == null) {
        throw new IllegalStateException("podmigration " + ns + "/" + name + " not found; see: kubectl ferry status -n " + ns);
      }
      if (pm.getStatus() != null && pm.getStatus().ended()) {
        throw new IllegalStateException("podmigration " + ns + "/" + name + " has ended already (" + pm.getStatus().phase
            + "); nothing to cancel");
      }
      // a merge patch of spec.cancel alone: the controller writes status meanwhile, and a
      // read-modify-write (edit) carries the resourceVersion it read, so it can fail with 409
      pms.withName(name).patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"cancel\":true}}");
      var out = spec.commandLine().getOut();
      out.println("cancel of podmigration " + ns + "/" + name + " requested");
      out.flush();
      if (!waiting.waitForEnd) {
        return 0;
      }
      PodMigrationStatus end = KubeMigrateCommand.follow(client, ns, name, waiting.poll(),
          waiting.timeout(), out);
      if (end != null && "Succeeded".equals(end.phase)) {
        spec.commandLine().getErr().println("ferry: podmigration " + ns + "/" + name + " reached its commit point before"
            + " the cancel: the pod runs on " + end.targetNode);
        return 1;
      }
      return end != null && "RolledBack".equals(end.phase) ? 0 : KubeMigrateCommand.exitCode(end, ns, name, waiting.timeoutSeconds, spec);
    } catch (KubernetesClientException e) {
      throw kube.apiError(e);
    }
  }
}
