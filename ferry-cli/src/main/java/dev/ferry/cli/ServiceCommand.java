package dev.ferry.cli;

import dev.ferry.migration.Services;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry service create|ls|rm}: VIPs served by the kernel (nftables DNAT in the client namespace). */
@Command(name = "service", mixinStandardHelpOptions = true,
    description = "Publishes pods behind service VIPs served by the kernel (nftables DNAT in the lab's client namespace);"
        + " a migration moves the VIP's backend at cutover.",
    subcommands = {ServiceCommand.Create.class, ServiceCommand.Ls.class, ServiceCommand.Rm.class})
final class ServiceCommand implements Runnable {
  @ParentCommand FerryCommand parent;

  @Override
  public void run() {
    new picocli.CommandLine(this).usage(System.out);
  }

  @Command(name = "create", mixinStandardHelpOptions = true, description = "Publishes a pod on a new VIP (from the IPAM).")
  static final class Create implements Callable<Integer> {
    @ParentCommand ServiceCommand svc;

    @Parameters(index = "0", description = "service name")
    String name;

    @Option(names = "--pod", required = true, description = "the pod behind the VIP")
    String pod;

    @Option(names = "--port", required = true, description = "TCP port (the same on the VIP and the pod)")
    int port;

    @Override
    public Integer call() {
      try (LabSession s = LabSession.open(svc.parent.lab)) {
        Services.Service v = s.coordinator.createService(name, pod, port);
        System.out.printf("service %s: %s:%d -> pod %s on %s%n", v.name(), v.vip(), v.port(), v.pod(), v.backendHost());
        return 0;
      }
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true, description = "Lists services and the kernel's rules.")
  static final class Ls implements Callable<Integer> {
    @ParentCommand ServiceCommand svc;

    @Option(names = "--rules", description = "also print the kernel's rules (nftables, in the client namespace)")
    boolean rules;

    @Override
    public Integer call() {
      try (LabSession s = LabSession.open(svc.parent.lab)) {
        System.out.printf("%-16s %-18s %-16s %s%n", "SERVICE", "VIP", "POD", "BACKEND HOST");
        for (Services.Service v : s.coordinator.services().all()) {
          System.out.printf("%-16s %-18s %-16s %s%n", v.name(), v.vip() + ":" + v.port(), v.pod(), v.backendHost());
        }
        if (rules) {
          System.out.println();
          System.out.print(new LabServices(s.lab.config()).rules());
        }
        return 0;
      }
    }
  }

  @Command(name = "rm", mixinStandardHelpOptions = true, description = "Removes a service and frees its VIP.")
  static final class Rm implements Callable<Integer> {
    @ParentCommand ServiceCommand svc;

    @Parameters(index = "0", description = "service name")
    String name;

    @Override
    public Integer call() {
      try (LabSession s = LabSession.open(svc.parent.lab)) {
        if (s.coordinator.services().find(name) == null) {
          throw new IllegalArgumentException("unknown service '" + name + "'; see: ferry service ls");
        }
        s.coordinator.services().remove(name);
        System.out.println("service " + name + " removed");
        return 0;
      }
    }
  }
}
