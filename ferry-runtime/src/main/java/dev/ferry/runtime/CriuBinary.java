package dev.ferry.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the CRIU that Ferry uses: $FERRY_CRIU, else the one the host set-up recorded in
 * {@code $FERRY_HOME/.ferry/host-ready}, else {@code criu} on PATH.
 */
public final class CriuBinary {
  private CriuBinary() {}

  public static String locate() {
    String env = System.getenv("FERRY_CRIU");
    if (env != null && !env.isBlank()) {
      return env;
    }
    String home = System.getenv("FERRY_HOME");
    if (home != null) {
      Path mark = Path.of(home, ".ferry", "host-ready");
      try {
        if (Files.isRegularFile(mark)) {
          String p = Files.readString(mark).strip();
          if (!p.isEmpty()) {
            return p;
          }
        }
      } catch (IOException e) {
        // fall through to PATH
      }
    }
    return "criu";
  }
}
