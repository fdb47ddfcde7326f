package dev.ferry.cli;

import picocli.CommandLine;

/** Entry point of the {@code ferry} command (and of the agents the lab starts). */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the CLI and returns its exit code: 0 only on success. */
  public static int run(String... args) {
    CommandLine cl = new CommandLine(new FerryCommand());
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          cmd.getErr().println("ferry: error: " + ex.getMessage());
          if (System.getenv("FERRY_DEBUG") != null) {
            ex.printStackTrace(cmd.getErr());
          }
          return ex instanceof IllegalArgumentException ? 2 : 1;
        });
    return cl.execute(args);
  }
}
