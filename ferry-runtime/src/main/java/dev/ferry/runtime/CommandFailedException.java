package dev.ferry.runtime;

/** A host command exited non-zero; the message carries the command and what it printed. */
public class CommandFailedException extends RuntimeException {
  private final Exec.Result result;

  public CommandFailedException(Exec.Result result) {
    super(describe(result));
    this.result = result;
  }

  public Exec.Result result() {
    return result;
  }

  private static String describe(Exec.Result r) {
    String said = (r.stderr().isBlank() ? r.stdout() : r.stderr()).strip();
    if (said.length() > 2000) {
      said = "..." + said.substring(said.length() - 2000);
    }
    return "'" + String.join(" ", r.command()) + "' exited " + r.exitCode() + (said.isEmpty() ? "" : ": " + said);
  }
}
