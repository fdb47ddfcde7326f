package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/** Pulls the lines that explain a failure out of a CRIU log. */
public final class CriuLog {
  private CriuLog() {}

  /** The error lines of the log (at most 15, the last ones), or "" when there is no log. */
  public static String explain(Path log) {
    try {
      if (!Files.exists(log)) {
        return "";
      }
      List<String> errors =
          Files.readAllLines(log).stream()
              .filter(l -> l.contains("Error") || l.contains("error") || l.contains("Can't") || l.contains("fail"))
              .collect(Collectors.toList());
      return String.join("\n", errors.subList(Math.max(0, errors.size() - 15), errors.size()));
    } catch (IOException e) {
      return "";
    }
  }
}
