package dev.ferry.cli;

import dev.ferry.migration.Capacity;
import dev.ferry.migration.Ipam;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code ferry hosts [--leases]}: capacity, reservations and the IPAM's leases. */
@Command(name = "hosts", mixinStandardHelpOptions = true,
    description = "Shows each host's capacity (memory, pod slots) and what pods and placeholders reserve of it;"
        + " with --leases, every address the IPAM has leased and who may answer for it now.")
final class HostsCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  @Option(names = "--leases", description = "also list the IPAM's leases")
  boolean leases;

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      System.out.printf("%-10s %-20s %-12s %s%n", "HOST", "MEMORY MiB", "POD SLOTS", "RESERVED BY");
      for (Capacity.HostUsage h : s.coordinator.capacity().usage()) {
        System.out.printf("%-10s %-20s %-12s %s%n", h.host(), h.memoryReservedMiB() + " / " + h.memoryMiB(),
            h.slotsReserved() + " / " + h.podSlots(),
            h.reservations().stream().map(r -> r.owner() + " (" + r.memoryMiB() + " MiB)").toList());
      }
      if (leases) {
        System.out.println();
        System.out.printf("%-14s %-34s %-12s %s%n", "ADDRESS", "OWNER", "KIND", "ANSWERED BY");
        for (Ipam.Lease l : s.coordinator.ipam().leases()) {
          System.out.printf("%-14s %-34s %-12s %s%n", l.ip(), l.owner(), l.kind(),
              l.host() == null ? (l.kind().equals("vip") ? "(kernel DNAT)" : "nobody (being handed over)") : l.host());
        }
      }
      return 0;
    }
  }
}
