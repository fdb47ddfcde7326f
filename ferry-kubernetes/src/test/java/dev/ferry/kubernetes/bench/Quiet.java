package dev.ferry.kubernetes.bench;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import java.util.concurrent.Callable;
import org.slf4j.LoggerFactory;

/**
 * Runs something with logging at WARN (SLF4J's and the mock server's java.util.logging, which
 * logs every request): the tests' default DEBUG would measure the console, not the controller.
 */
final class Quiet {
  private static final java.util.logging.Logger MOCK_SERVER = java.util.logging.Logger.getLogger("io.fabric8.mockwebserver");

  private Quiet() {}

  static <T> T logs(Callable<T> what) throws Exception {
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    Level was = root.getLevel();
    java.util.logging.Level mockWas = MOCK_SERVER.getLevel();
    root.setLevel(Level.WARN);
    MOCK_SERVER.setLevel(java.util.logging.Level.WARNING);
    try {
      return what.call();
    } finally {
      root.setLevel(was);
      MOCK_SERVER.setLevel(mockWas);
    }
  }
}
