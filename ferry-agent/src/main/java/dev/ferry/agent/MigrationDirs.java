package dev.ferry.agent;

import dev.ferry.runtime.Files2;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes a migration's working directory (images, logs). With {@code FERRY_KEEP_CRIU_LOGS=DIR}
 * in the agent's environment, the CRIU and runc logs in it are copied to
 * {@code DIR/<migration>/<host>/} first, for diagnosis and for measuring where time goes.
 */
final class MigrationDirs {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationDirs.class);

  private MigrationDirs() {}

  static void remove(Path migrationDir, String host) {
    String keep = System.getenv("FERRY_KEEP_CRIU_LOGS");
    if (keep != null && !keep.isBlank() && Files.isDirectory(migrationDir)) {
      Path to = Path.of(keep).resolve(migrationDir.getFileName().toString()).resolve(host);
      try (Stream<Path> walk = Files.walk(migrationDir)) {
        for (Path p : (Iterable<Path>) walk::iterator) {
          if (Files.isRegularFile(p) && p.getFileName().toString().endsWith(".log")) {
            Path dest = to.resolve(migrationDir.relativize(p).toString().replace('/', '_'));
            Files.createDirectories(to);
            Files.copy(p, dest, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
          }
        }
      } catch (IOException e) {
        LOG.warn("could not keep the logs of {}: {}", migrationDir, e.getMessage());
      }
    }
    Files2.deleteTree(migrationDir);
  }
}
