package dev.ferry.runtime;

import java.util.Arrays;
import java.util.List;

/** Finds processes by what their command line names (a lab's or a migration's directory, a mode flag). */
public final class Procs {
  private Procs() {}

  /**
   * The processes, other than this one, whose command line contains every one of {@code parts}
   * (e.g. CRIU's page daemons of one migration: {@code "lazy-pages"} and its work directory).
   * A process that ends meanwhile, or whose command line cannot be read, is left out.
   */
  public static List<ProcessHandle> withCommandLineContaining(String... parts) {
    long self = ProcessHandle.current().pid();
    return ProcessHandle.allProcesses()
        .filter(p -> p.pid() != self)
        .filter(p -> p.info().commandLine().map(c -> Arrays.stream(parts).allMatch(c::contains)).orElse(false))
        .toList();
  }
}
