package dev.ferry.transfer.memory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import com.carrotsearch.hppc.LongLongHashMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The target side of memory pre-copy: rebuilds CRIU's pages images from the pages the
 * pre-copy rounds delivered ({@code mem/round-K/PID.pages}) and the frozen round's recipes
 * ({@code pages-N.img.ferrydelta}), so that CRIU restores from complete, ordinary images.
 */
public final class TargetPages {
  private TargetPages() {}

  /** What a rebuild did. */
  public record Rebuilt(int images, long keptPages, long literalPages) {}

  /**
   * Rebuilds every pages image in {@code imagesDir} that has a recipe, then deletes the
   * recipes.
   *
   * @throws IOException when a recipe names a page no round delivered, or a file is damaged
   */
  public static Rebuilt rebuild(Path memDir, Path imagesDir) throws IOException {
    List<Path> recipes;
    try (Stream<Path> s = Files.list(imagesDir)) {
      recipes = s.filter(p -> p.getFileName().toString().endsWith(PageRuns.RECIPE_SUFFIX)).sorted().toList();
    }
    if (recipes.isEmpty()) {
      return new Rebuilt(0, 0, 0);
    }
    Index index = Index.of(memDir);
    long kept = 0;
    long literal = 0;
    try {
      for (Path recipe : recipes) {
        String name = recipe.getFileName().toString();
        Path pages = imagesDir.resolve(name.substring(0, name.length() - PageRuns.RECIPE_SUFFIX.length()));
        long[] counts = apply(recipe, pages, index);
        kept += counts[0];
        literal += counts[1];
        Files.delete(recipe);
      }
    } finally {
      index.close();
    }
    return new Rebuilt(recipes.size(), kept, literal);
  }

  private static long[] apply(Path recipe, Path pages, Index index) throws IOException {
    long kept = 0;
    long literal = 0;
    try (FileChannel in = FileChannel.open(recipe, StandardOpenOption.READ);
        FileChannel out = FileChannel.open(pages, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      ByteBuffer head = ByteBuffer.allocate(16);
      readFully(in, head, 0, recipe);
      if (head.getLong(0) != PageRuns.RECIPE_MAGIC) {
        throw new IOException(recipe + " is not a Ferry page recipe");
      }
      long pid = head.getLong(8);
      LongLongHashMap pagesOfPid = index.pages.getOrDefault(pid, new LongLongHashMap(0));
      long pos = 16;
      ByteBuffer rec = ByteBuffer.allocate(13);
      Copier copier = new Copier(index, out);
      while (true) {
        rec.clear().limit(1);
        readFully(in, rec, pos, recipe);
        byte kind = rec.get(0);
        if (kind == PageRuns.END) {
          break;
        }
        rec.clear().limit(13);
        readFully(in, rec, pos, recipe);
        long vaddr = rec.getLong(1);
        int count = rec.getInt(9);
        pos += 13;
        if (kind == PageRuns.LITERAL) {
          copier.flush();
          transferFully(in, pos, (long) count * PageRuns.PAGE, out, recipe);
          pos += (long) count * PageRuns.PAGE;
          literal += count;
        } else if (kind == PageRuns.KEPT) {
          for (int i = 0; i < count; i++) {
            long addr = vaddr + (long) i * PageRuns.PAGE;
            long where = pagesOfPid.getOrDefault(addr, -1);
            if (where < 0) {
              throw new IOException(recipe.getFileName() + " keeps page 0x" + Long.toHexString(addr) + " of pid " + pid
                  + " that no pre-copy round delivered");
            }
            copier.add(where);
          }
          kept += count;
        } else {
          throw new IOException(recipe + ": unknown record kind " + kind + " at offset " + pos);
        }
      }
      copier.flush();
    }
    return new long[] {kept, literal};
  }

  /** Copies runs of pages that lie one after the other in a round file in one kernel call. */
  private static final class Copier {
    private final Index index;
    private final FileChannel out;
    private long start = -1;
    private long length;

    Copier(Index index, FileChannel out) {
      this.index = index;
      this.out = out;
    }

    void add(long where) throws IOException {
      if (start >= 0 && where == start + length) {
        length += PageRuns.PAGE;
        return;
      }
      flush();
      start = where;
      length = PageRuns.PAGE;
    }

    void flush() throws IOException {
      if (start < 0) {
        return;
      }
      int file = Index.file(start);
      transferFully(index.channel(file), Index.offset(start), length, out, index.files.get(file));
      start = -1;
      length = 0;
    }
  }

  /** Where each page of each pid lies in the round files, latest round winning. */
  static final class Index implements AutoCloseable {
    private static final int OFFSET_BITS = 40;
    final List<Path> files = new ArrayList<>();
    private final List<FileChannel> channels = new ArrayList<>();
    /** Locations by pid and page address (primitive: boxed, a GiB's index costs GC pauses). */
    final Map<Long, LongLongHashMap> pages = new HashMap<>();

    static long encode(int file, long offset) {
      return ((long) file << OFFSET_BITS) | offset;
    }

    static int file(long where) {
      return (int) (where >>> OFFSET_BITS);
    }

    static long offset(long where) {
      return where & ((1L << OFFSET_BITS) - 1);
    }

    static Index of(Path memDir) throws IOException {
      Index idx = new Index();
      if (!Files.isDirectory(memDir)) {
        return idx;
      }
      List<Path> rounds;
      try (Stream<Path> s = Files.list(memDir)) {
        rounds = s.filter(p -> p.getFileName().toString().startsWith("round-"))
            .sorted(Comparator.comparingInt(p -> Integer.parseInt(p.getFileName().toString().substring(6))))
            .toList();
      }
      for (Path round : rounds) {
        try (Stream<Path> s = Files.list(round)) {
          for (Path f : (Iterable<Path>) s.sorted()::iterator) {
            String n = f.getFileName().toString();
            if (n.endsWith(".pages")) {
              idx.add(Long.parseLong(n.substring(0, n.length() - 6)), f);
            }
          }
        }
      }
      return idx;
    }

    /** Adds a file that is not a round file (e.g. pages arriving later); returns its number. */
    int addFile(Path f, FileChannel ch) {
      files.add(f);
      channels.add(ch);
      return files.size() - 1;
    }

    private void add(long pid, Path f) throws IOException {
      int fileNo = files.size();
      files.add(f);
      FileChannel ch = FileChannel.open(f, StandardOpenOption.READ);
      channels.add(ch);
      LongLongHashMap map = pages.computeIfAbsent(pid, p -> new LongLongHashMap());
      ByteBuffer b = ByteBuffer.allocate(12);
      b.limit(8);
      readFully(ch, b, 0, f);
      if (b.getLong(0) != PageRuns.ROUND_MAGIC) {
        throw new IOException(f + " is not a Ferry round file");
      }
      long pos = 8;
      while (true) {
        b.clear().limit(8);
        readFully(ch, b, pos, f);
        long vaddr = b.getLong(0);
        if (vaddr == -1L) {
          break;
        }
        b.clear().limit(4);
        readFully(ch, b, pos + 8, f);
        int count = b.getInt(0);
        long data = pos + 12;
        for (int i = 0; i < count; i++) {
          map.put(vaddr + (long) i * PageRuns.PAGE, encode(fileNo, data + (long) i * PageRuns.PAGE));
        }
        pos = data + (long) count * PageRuns.PAGE;
      }
    }

    FileChannel channel(int file) {
      return channels.get(file);
    }

    @Override
    public void close() throws IOException {
      for (FileChannel c : channels) {
        c.close();
      }
    }
  }

  static void readFully(FileChannel ch, ByteBuffer b, long pos, Path what) throws IOException {
    long p = pos;
    while (b.hasRemaining()) {
      int n = ch.read(b, p);
      if (n < 0) {
        throw new IOException(what + " is truncated at offset " + p);
      }
      p += n;
    }
  }

  private static void transferFully(FileChannel from, long pos, long len, FileChannel to, Path what) throws IOException {
    long done = 0;
    while (done < len) {
      long n = from.transferTo(pos + done, len - done, to);
      if (n <= 0) {
        throw new IOException(what + " is truncated at offset " + (pos + done));
      }
      done += n;
    }
  }
}
