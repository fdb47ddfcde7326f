package dev.ferry.transfer;

import java.nio.file.Path;
import java.util.Set;

/**
 * One directory tree to send, and the name it gets on the other side.
 *
 * @param dir local directory
 * @param as relative path it lands at under the receiver's root, e.g. "images/app"
 * @param skip files (paths relative to {@code dir}) not to send, e.g. pages images replaced by
 *     pre-copy recipes
 */
public record TransferSource(Path dir, String as, Set<String> skip) {
  public TransferSource(Path dir, String as) {
    this(dir, as, Set.of());
  }

  public TransferSource {
    skip = Set.copyOf(skip);
  }
}
