package dev.ferry.cli.kube;

import dev.ferry.kubernetes.model.PodMigration;
import dev.ferry.kubernetes.model.PodMigrationStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.PrintWriter;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code ferry kube status [NAME]}: the PodMigrations of a namespace, or one in detail. */
@Command(name = "status", mixinStandardHelpOptions = true,
    description = "Shows the PodMigrations of the namespace (or of all with -A), or one of them in detail.")
final class KubeStatusCommand implements Callable<Integer> {
  @ParentCommand KubeCommand kube;
  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "NAME", description = "a PodMigration's name")
  String name;

  @Option(names = {"-A", "--all-namespaces"}, description = "list the PodMigrations of every namespace")
  boolean all;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (KubernetesClient client = kube.client()) {
      String ns = kube.namespace(client);
      if (name != null) {
        PodMigration pm = client.resources(PodMigration.class).inNamespace(ns).withName(name).get();
        if (pm == null) {
          throw new IllegalStateException("podmigration " + ns + "/" + name + " not found; see: kubectl ferry status -n " + ns);
        }
        detail(out, pm);
        return 0;
      }
      List<PodMigration> items = (all ? client.resources(PodMigration.class).inAnyNamespace()
          : client.resources(PodMigration.class).inNamespace(ns)).list().getItems().stream()
          .sorted(Comparator.comparing((PodMigration p) -> p.getMetadata().getNamespace())
              .thenComparing(p -> p.getMetadata().getName())).toList();
      if (items.isEmpty()) {
        out.println("no PodMigrations in " + (all ? "any namespace" : "namespace " + ns));
        return 0;
      }
      String fmt = "%-12s %-28s %-24s %-14s %-14s %-12s %s%n";
      out.printf(Locale.ROOT, fmt, "NAMESPACE", "NAME", "POD", "SOURCE", "TARGET", "STRATEGY", "STATUS");
      for (PodMigration pm : items) {
        PodMigrationStatus st = pm.getStatus();
        out.printf(Locale.ROOT, fmt, pm.getMetadata().getNamespace(), pm.getMetadata().getName(), pm.getSpec().podName,
            st != null && st.sourceNode != null ? st.sourceNode : "-",
            st != null && st.targetNode != null ? st.targetNode : String.valueOf(pm.getSpec().targetNode),
            st != null && st.strategy != null ? st.strategy : "-", StatusLine.of(st));
      }
      return 0;
    } catch (KubernetesClientException e) {
      throw kube.apiError(e);
    }
  }

  private static void detail(PrintWriter out, PodMigration pm) {
    PodMigrationStatus st = pm.getStatus();
    out.println("Name:       " + pm.getMetadata().getNamespace() + "/" + pm.getMetadata().getName());
    out.println("Pod:        " + pm.getSpec().podName);
    out.println("Status:     " + StatusLine.of(st));
    if (st == null) {
      return;
    }
    line(out, "Migration:", st.migrationId);
    line(out, "Source:", st.sourceNode);
    line(out, "Target:", st.targetNode != null ? st.targetNode : pm.getSpec().targetNode);
    line(out, "Strategy:", st.strategy);
    line(out, "Policy:", st.policy);
    line(out, "Frozen ms:", st.frozenMs);
    line(out, "Downtime ms:", st.downtimeMs);
    line(out, "Started:", st.startedAt);
    line(out, "Finished:", st.finishedAt);
    line(out, "Cancel:", pm.getSpec().cancel ? "requested" : null);
    line(out, "Reason:", st.failureReason);
  }

  private static void line(PrintWriter out, String label, Object value) {
    if (value != null) {
      out.printf(Locale.ROOT, "%-12s%s%n", label, value);
    }
  }
}
