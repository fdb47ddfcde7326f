package dev.ferry.runtime;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/** Pulls the lines that explain a failure out of a CRIU log. */
public final class CriuLog {
  /** CRIU says why it failed near the end; a log can be hundreds of MB (a lazy restore's page faults). */
  private static final long TAIL_BYTES = 4 << 20;
  private static final int MAX_LINES = 15;
  private static final int MAX_LINE = 400;

  private CriuLog() {}

  /** The error lines of the log's last 4 MiB (at most 15, the last ones), or "" when there is no log. */
  public static String explain(Path log) {
    if (!Files.exists(log)) {
      return "";
    }
    try (RandomAccessFile f = new RandomAccessFile(log.toFile(), "r")) {
      long start = Math.max(0, f.length() - TAIL_BYTES);
      byte[] tail = new byte[(int) (f.length() - start)];
      f.seek(start);
      f.readFully(tail);
      Deque<String> errors = new ArrayDeque<>();
      for (String l : new String(tail, StandardCharsets.UTF_8).split("\n")) {
        if (l.contains("Error") || l.contains("error") || l.contains("Can't") || l.contains("fail")) {
          errors.addLast(l.length() > MAX_LINE ? l.substring(0, MAX_LINE) + " ..." : l);
          if (errors.size() > MAX_LINES) {
            errors.removeFirst();
          }
        }
      }
      return String.join("\n", errors);
    } catch (IOException e) {
      return "";
    }
  }
}
