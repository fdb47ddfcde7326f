package dev.ferry.cli.kube;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.cli.FerryCommand;
import dev.ferry.cli.Main;
import dev.ferry.kubernetes.controller.FerryOperator;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code ferry controller}: what deploy/controller.yaml runs parses into the lease the RBAC grants. */
class ControllerCommandTest {
  static ControllerCommand parse(List<String> args) {
    CommandLine.ParseResult r = new CommandLine(new FerryCommand()).parseArgs(args.toArray(String[]::new));
    return (ControllerCommand) r.subcommand().commandSpec().userObject();
  }

  @Test
  void theDeploymentsArgumentsGiveTheLeaseInItsNamespaceUnderThePodsName() throws Exception {
    Deployment d = Serialization.unmarshal(Files.readString(Path.of("..", "deploy", "controller.yaml")), Deployment.class);
    // what the kubelet makes of $(VAR) references from the pod's env (downward API)
    List<String> args = d.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs().stream()
        .map(a -> a.replace("$(POD_NAMESPACE)", d.getMetadata().getNamespace()).replace("$(POD_NAME)", "ferry-controller-7d9f"))
        .toList();
    FerryOperator.LeaderElection e = parse(args).election();
    assertThat(e.leaseNamespace()).isEqualTo("ferry-system");
    assertThat(e.leaseName()).isEqualTo("ferry-controller");
    assertThat(e.identity()).isEqualTo("ferry-controller-7d9f");
    assertThat(e.leaseDuration()).isEqualTo(Duration.ofSeconds(15));
  }

  @Test
  void leaseTimesAndTheLabCanBeGivenOnTheCommandLine() {
    ControllerCommand c = parse(List.of("--lab", "k8s", "controller", "--lease-namespace", "ops", "--identity", "me",
        "--lease-duration", "6", "--renew-deadline", "4", "--retry-period", "1"));
    FerryOperator.LeaderElection e = c.election();
    assertThat(e.leaseNamespace()).isEqualTo("ops");
    assertThat(e.renewDeadline()).isEqualTo(Duration.ofSeconds(4));
    assertThat(Kube.lab(c.spec)).isEqualTo("k8s");
    assertThat(Kube.lab(parse(List.of("controller", "--lab", "other")).spec)).isEqualTo("other");
  }

  @Test
  void leaseTimesThatDoNotFitAndAMissingLabAreClearErrors() {
    Result bad = main("controller", "--lease-duration", "5", "--renew-deadline", "10");
    assertThat(bad.code()).isEqualTo(2);
    assertThat(bad.err()).contains("lease duration (5000 ms) > renew deadline (10000 ms)")
        .contains("adjust --lease-duration, --renew-deadline or --retry-period");
    Result noLab = main("controller", "--lab", "nolab9");
    assertThat(noLab.code()).isEqualTo(1);
    assertThat(noLab.err()).contains("lab 'nolab9' is not up; run: ferry lab up --lab nolab9");
  }

  record Result(int code, String err) {}

  static Result main(String... args) {
    PrintStream was = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      return new Result(Main.run(args), err.toString(StandardCharsets.UTF_8));
    } finally {
      System.setErr(was);
    }
  }
}
