package dev.ferry.transfer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * What one transfer sends, listed once before anything is sent: its entries in order (with each
 * file's size as it was then, so that every connection of a transfer cuts a file the same way),
 * the paths to delete, and the stamps of all files (the baseline of a next round). A resumed or
 * parallel transfer goes by the same plan on every connection.
 */
final class TransferPlan {
  /** One directory, symbolic link or regular file to send. */
  record Item(Path path, String rel, byte kind, long size) {}

  final List<Item> items = new ArrayList<>();
  final List<String> deletions = new ArrayList<>();
  final Map<String, ImageSender.FileStamp> now = new HashMap<>();
  final boolean incremental;

  private TransferPlan(boolean incremental) {
    this.incremental = incremental;
  }

  /**
   * Lists {@code sources}; with a {@code baseline} (what an earlier round delivered), only files
   * whose size or times differ or that a source always sends, and the deletions since.
   */
  static TransferPlan of(List<TransferSource> sources, Map<String, ImageSender.FileStamp> baseline) throws IOException {
    TransferPlan plan = new TransferPlan(baseline != null);
    for (TransferSource src : sources) {
      try (Stream<Path> walk = Files.walk(src.dir())) {
        for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
          String rel = src.as() + (p.equals(src.dir()) ? "" : "/" + src.dir().relativize(p));
          if (!p.equals(src.dir()) && src.skip().contains(src.dir().relativize(p).toString())) {
            continue;
          }
          byte kind;
          long size = 0;
          if (Files.isSymbolicLink(p)) {
            kind = TransferProtocol.SYMLINK;
          } else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            kind = TransferProtocol.DIR;
          } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            Map<String, Object> a = Files.readAttributes(p, STAMP_ATTRIBUTES, LinkOption.NOFOLLOW_LINKS);
            ImageSender.FileStamp stamp = stamp(a);
            plan.now.put(rel, stamp);
            if (baseline != null && stamp.equals(baseline.get(rel)) && !src.alwaysSend().contains(a.get("fileKey"))) {
              continue; // the receiver has this very file from an earlier round
            }
            kind = TransferProtocol.FILE;
            size = stamp.size();
          } else {
            continue; // sockets, fifos and devices are never part of a bundle or an image directory
          }
          plan.items.add(new Item(p, rel, kind, size));
        }
      }
    }
    if (baseline != null) {
      for (String gone : new TreeSet<>(baseline.keySet())) {
        if (!plan.now.containsKey(gone)) {
          plan.deletions.add(gone);
        }
      }
    }
    return plan;
  }

  /** A file's stamp and its key ({@link TransferSource#alwaysSend}), read in one call. */
  private static final String STAMP_ATTRIBUTES = "unix:size,lastModifiedTime,ctime,fileKey";

  private static ImageSender.FileStamp stamp(Map<String, Object> a) {
    return new ImageSender.FileStamp((Long) a.get("size"), ((FileTime) a.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS),
        ((FileTime) a.get("ctime")).to(TimeUnit.NANOSECONDS));
  }
}
