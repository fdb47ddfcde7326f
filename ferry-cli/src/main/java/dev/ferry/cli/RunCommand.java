package dev.ferry.cli;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.VolumeSpec;
import dev.ferry.migration.PodRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ferry run --host H NAME -- PROGRAM ARGS...}. */
@Command(name = "run", mixinStandardHelpOptions = true,
    description = "Runs a program installed on this machine as a pod on a lab host (bundle built from the program and "
        + "the libraries it needs).")
final class RunCommand implements Callable<Integer> {
  @ParentCommand FerryCommand parent;

  /** Host to run on. */
  @Option(names = "--host", required = true, description = "lab host to run the pod on")
  String host;

  /** Pod memory limit. */
  @Option(names = "--memory-mib", defaultValue = "512", description = "memory limit of the pod in MiB (default: ${DEFAULT-VALUE})")
  long memoryMiB;

  /** CPU weight. */
  @Option(names = "--cpu-shares", defaultValue = "0", description = "relative CPU weight of each container (cgroup"
      + " cpu.shares; default: the runtime's)")
  long cpuShares;

  /** Host volumes. */
  @Option(names = "--volume", paramLabel = "NAME:/PATH", description = "a directory of the pod's own on its host, mounted"
      + " at PATH and copied with the pod when it migrates; repeatable")
  List<String> volumes = new ArrayList<>();

  /** Network disks. */
  @Option(names = "--disk", paramLabel = "NAME:/PATH", description = "a network disk (ferry disk create NAME) mounted at"
      + " PATH; attached to one host at a time, it follows the pod; repeatable")
  List<String> disks = new ArrayList<>();

  /** Extra files the program needs. */
  @Option(names = "--add", description = "extra file or directory (absolute path) to copy into the pod's rootfs; repeatable")
  List<String> extra = new ArrayList<>();

  /** Container runtime. */
  @Option(names = "--runtime", defaultValue = "runc", description = "runc (runc + CRIU, default) or runsc (gVisor: the"
      + " pod is one sandbox with its own kernel; migrates cold only, and its clients' TCP connections are not kept)")
  String runtime;

  /** runsc: what closes the pod's client connections before a checkpoint. */
  @Option(names = "--drain", paramLabel = "COMMAND", description = "(runsc) command run inside the pod before its"
      + " checkpoint to close its clients' TCP connections, which runsc cannot save, e.g. 'redis-cli client kill type"
      + " normal' (add the program with --add); split on spaces")
  String drain;

  @Parameters(index = "0", description = "pod name")
  String name;

  @Parameters(index = "1..*", arity = "1..*", description = "program and arguments (after --)")
  List<String> command;

  private List<VolumeSpec> volumeSpecs() {
    List<VolumeSpec> out = new ArrayList<>();
    for (String v : volumes) {
      out.add(parse(v, "host", "--volume"));
    }
    for (String d : disks) {
      out.add(parse(d, "disk", "--disk"));
    }
    return out;
  }

  private static VolumeSpec parse(String s, String kind, String option) {
    int colon = s.indexOf(':');
    if (colon <= 0) {
      throw new IllegalArgumentException(option + " '" + s + "': expected NAME:/PATH");
    }
    return new VolumeSpec(s.substring(0, colon), kind, s.substring(colon + 1));
  }

  @Override
  public Integer call() {
    try (LabSession s = LabSession.open(parent.lab)) {
      List<String> drainCommand = drain == null || drain.isBlank() ? List.of() : List.of(drain.strip().split("\\s+"));
      PodRecord p = s.coordinator.runPod(host, name, List.of(new ContainerSpec("app", command, extra)), memoryMiB,
          cpuShares, volumeSpecs(), runtime, drainCommand);
      System.out.printf("pod %s running on %s (%s), ip %s, uid %s%n", p.name(), p.host(), p.spec().runtime(),
          p.spec().identity().ip(), p.spec().identity().uid());
      return 0;
    }
  }
}
