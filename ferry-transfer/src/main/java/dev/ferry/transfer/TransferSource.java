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
 * @param alwaysSend files sent by an incremental transfer even when their size and times are
 *     what the receiver already has, named by their {@link
 *     java.nio.file.attribute.BasicFileAttributes#fileKey() file keys} (device and inode): files
 *     a process had mapped shared and writable, whose writes through the mapping leave the times
 *     alone once a page is dirty
 */
public record TransferSource(Path dir, String as, Set<String> skip, Set<Object> alwaysSend) {
  public TransferSource(Path dir, String as) {
    this(dir, as, Set.of(), Set.of());
  }

  public TransferSource(Path dir, String as, Set<String> skip) {
    this(dir, as, skip, Set.of());
  }

  public TransferSource {
    skip = Set.copyOf(skip);
    alwaysSend = Set.copyOf(alwaysSend);
  }
}
