package dev.ferry.cli;

import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code ferry lab up|down|show}. */
@Command(name = "lab", mixinStandardHelpOptions = true,
    description = "Brings a lab of hosts (network namespaces with an agent each) up or down on this machine.",
    subcommands = {LabCommand.Up.class, LabCommand.Down.class, LabCommand.Show.class})
final class LabCommand implements Runnable {
  @ParentCommand FerryCommand parent;

  @Override
  public void run() {
    new picocli.CommandLine(this).usage(System.out);
  }

  @Command(name = "up", mixinStandardHelpOptions = true,
      description = "Creates the lab's hosts, bridge and client namespace and starts an agent per host. Idempotent.")
  static final class Up implements Callable<Integer> {
    @ParentCommand LabCommand lab;

    /** Hosts to create. */
    @Option(names = "--hosts", split = ",", defaultValue = "host-a,host-b", description = "host names (default: ${DEFAULT-VALUE})")
    List<String> hosts;

    /** Memory each host offers to pods. */
    @Option(names = "--memory-mib", defaultValue = "8192", description = "memory capacity per host in MiB (default: ${DEFAULT-VALUE})")
    long memoryMiB;

    /** Pods each host can hold. */
    @Option(names = "--pod-slots", defaultValue = "16", description = "pods (placeholders included) each host can hold"
        + " (default: ${DEFAULT-VALUE})")
    int podSlots;

    /** Mutual TLS between agents. */
    @Option(names = "--tls", negatable = true, defaultValue = "true", fallbackValue = "true",
        description = "agents move images and memory to each other over mutual TLS with certificates of a CA the lab"
            + " makes (the default); --no-tls: in clear, for a network where nobody else listens")
    boolean tls;

    @Override
    public Integer call() {
      FerryCommand.requireRoot();
      Lab l = Lab.up(lab.parent.lab, hosts, memoryMiB, podSlots, tls);
      print(l.config());
      return 0;
    }
  }

  @Command(name = "down", mixinStandardHelpOptions = true,
      description = "Removes everything of the lab: agents, pods, namespaces, files. Idempotent; also after a crash.")
  static final class Down implements Callable<Integer> {
    @ParentCommand LabCommand lab;

    @Override
    public Integer call() {
      FerryCommand.requireRoot();
      Lab.down(lab.parent.lab);
      System.out.println("lab " + lab.parent.lab + " is down");
      return 0;
    }
  }

  @Command(name = "show", mixinStandardHelpOptions = true, description = "Shows the lab's hosts and whether their agents run.")
  static final class Show implements Callable<Integer> {
    @ParentCommand LabCommand lab;

    @Override
    public Integer call() {
      print(Lab.require(lab.parent.lab).config());
      return 0;
    }
  }

  static void print(LabConfig c) {
    Lab lab = Lab.require(c.name());
    System.out.printf("lab %s (network %s.0.0/%d, bridge in namespace %s)%n", c.name(), c.networkPrefix(), c.prefixLength(),
        c.bridgeNs());
    System.out.printf("  %-10s %-14s %-18s %-22s %s%n", "HOST", "IP", "NAMESPACE", "CAPACITY", "AGENT");
    for (LabConfig.HostEntry h : c.hosts()) {
      System.out.printf("  %-10s %-14s %-18s %-22s %s%n", h.name(), h.ip(), h.netns(),
          h.memoryCapacityMiB() + " MiB, " + h.slots() + " pods",
          lab.agentAlive(h) ? "running (pid " + lab.agentPid(h).orElse(0L) + ")" : "NOT RUNNING");
    }
    System.out.printf("  %-10s %-14s %-18s%n", "client", c.clientIp(), c.clientNs());
  }
}
