package dev.ferry.runtime;

/** A checkpoint or restore failed; the message gives CRIU's own explanation from its log. */
public class CheckpointException extends CommandFailedException {
  private final String criuExplanation;

  public CheckpointException(String what, Exec.Result result, String criuExplanation) {
    super(result);
    this.criuExplanation = criuExplanation;
  }

  @Override
  public String getMessage() {
    return super.getMessage() + (criuExplanation.isEmpty() ? "" : "\nCRIU says:\n" + criuExplanation);
  }

  public String criuExplanation() {
    return criuExplanation;
  }
}
