package dev.ferry.cli;

import dev.ferry.migration.Disks;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry disk create|ls|rm}: the lab's network disks. */
@Command(name = "disk", mixinStandardHelpOptions = true,
    description = "Network disks of the lab: remote volumes that may be attached to one host at a time (use them with"
        + " ferry run --disk NAME:/PATH; a migration detaches the disk from the source after the freeze and attaches it"
        + " to the target before the restore).",
    subcommands = {DiskCommand.Create.class, DiskCommand.Ls.class, DiskCommand.Rm.class})
final class DiskCommand implements Runnable {
  @ParentCommand FerryCommand parent;

  @Override
  public void run() {
    new picocli.CommandLine(this).usage(System.out);
  }

  @Command(name = "create", mixinStandardHelpOptions = true, description = "Creates an empty disk, attached nowhere.")
  static final class Create implements Callable<Integer> {
    @ParentCommand DiskCommand disk;

    @Parameters(index = "0", description = "disk name")
    String name;

    @Override
    public Integer call() {
      try (LabSession s = LabSession.open(disk.parent.lab)) {
        s.coordinator.disks().create(name);
        System.out.println("disk " + name + " created");
        return 0;
      }
    }
  }

  @Command(name = "ls", mixinStandardHelpOptions = true,
      description = "Lists disks: the host each is attached to as recorded, and as mounted now.")
  static final class Ls implements Callable<Integer> {
    @ParentCommand DiskCommand disk;

    @Override
    public Integer call() {
      try (LabSession s = LabSession.open(disk.parent.lab)) {
        System.out.printf("%-16s %-12s %s%n", "DISK", "ATTACHED TO", "MOUNTED ON");
        for (Disks.Disk d : s.coordinator.disks().all()) {
          System.out.printf("%-16s %-12s %s%n", d.name(), d.host() == null ? "-" : d.host(),
              s.coordinator.disks().backend().attachedTo(d.name()));
        }
        return 0;
      }
    }
  }

  @Command(name = "rm", mixinStandardHelpOptions = true, description = "Deletes a disk no pod uses, and its data.")
  static final class Rm implements Callable<Integer> {
    @ParentCommand DiskCommand disk;

    @Parameters(index = "0", description = "disk name")
    String name;

    @Override
    public Integer call() {
      try (LabSession s = LabSession.open(disk.parent.lab)) {
        s.coordinator.disks().remove(name);
        System.out.println("disk " + name + " removed");
        return 0;
      }
    }
  }
}
