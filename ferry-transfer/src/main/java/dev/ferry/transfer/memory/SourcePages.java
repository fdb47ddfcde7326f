package dev.ferry.transfer.memory;

import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import com.carrotsearch.hppc.LongLongHashMap;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * The source side of memory pre-copy without kernel dirty tracking: remembers, per process
 * and page, the hash of the contents the target holds, so that each round writes only pages
 * whose contents changed, and the frozen round replaces CRIU's pages images by recipes that
 * send only what the target lacks. One instance per migration; not thread-safe.
 */
public final class SourcePages {
  /**
   * Hash of what the target holds, by pid (inside the container) and page address. Primitive
   * maps: a GiB is 262k entries, which boxed would cost the agent 100 ms garbage-collection pauses.
   */
  private final Map<Long, LongLongHashMap> held = new HashMap<>();
  private static final LongLongHashMap NONE_HELD = new LongLongHashMap(0);
  /** By pid, the pages the last round found changed (sorted): what the app was writing lately. */
  private final Map<Long, long[]> lastChanged = new HashMap<>();

  /** Pages scanned and pages written by one round or recipe. */
  public record Stats(long scannedPages, long changedPages, long bytesWritten) {
    Stats plus(Stats o) {
      return new Stats(scannedPages + o.scannedPages, changedPages + o.changedPages, bytesWritten + o.bytesWritten);
    }

    public static final Stats NONE = new Stats(0, 0, 0);
  }

  /** Whether the target holds exactly these contents (hash) for that page from a round. */
  public boolean targetHolds(long pid, long vaddr, long hash) {
    LongLongHashMap m = held.get(pid);
    return m != null && holds(m, vaddr, hash);
  }

  private static boolean holds(LongLongHashMap m, long vaddr, long hash) {
    int i = m.indexOf(vaddr);
    return m.indexExists(i) && m.indexGet(i) == hash;
  }

  /** Whether a round was sent already (the frozen round can then use recipes). */
  public boolean hasRounds() {
    return !held.isEmpty();
  }

  /**
   * Opens one process's file of a pre-copy round. Feed it the pages as they are read, then
   * close it. Its hashes become "held by the target" only on {@link RoundFile#commit()}, after
   * the round was delivered.
   */
  public RoundFile openRound(long pid, Path file) throws IOException {
    return new RoundFile(pid, file);
  }

  /** One process's pages of one round. */
  public final class RoundFile implements Closeable {
    private final long pid;
    private final Path file;
    private final FileChannel channel;
    private final DataOutputStream out;
    private final LongLongHashMap known;
    private final LongLongHashMap pending = new LongLongHashMap();
    private long scanned;
    private long changed;
    private long runStart = -1;
    private int runCount;
    private final byte[] runData = new byte[256 * PageRuns.PAGE];

    private RoundFile(long pid, Path file) throws IOException {
      this.pid = pid;
      this.file = file;
      Files.createDirectories(file.getParent());
      this.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
          StandardOpenOption.WRITE);
      this.out = new DataOutputStream(new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16));
      this.known = held.getOrDefault(pid, NONE_HELD);
      out.writeLong(PageRuns.ROUND_MAGIC);
    }

    /** Takes {@code count} pages at {@code vaddr} from {@code data} (position 0). */
    public void pages(long vaddr, ByteBuffer data, int count) throws IOException {
      for (int i = 0; i < count; i++) {
        long addr = vaddr + (long) i * PageRuns.PAGE;
        long h = PageHash.of(data, i * PageRuns.PAGE);
        scanned++;
        if (holds(known, addr, h)) {
          flushRun();
          continue;
        }
        pending.put(addr, h);
        if (runStart >= 0 && (addr != runStart + (long) runCount * PageRuns.PAGE || runCount == 256)) {
          flushRun();
        }
        if (runStart < 0) {
          runStart = addr;
        }
        data.get(i * PageRuns.PAGE, runData, runCount * PageRuns.PAGE, PageRuns.PAGE);
        runCount++;
        changed++;
      }
    }

    private void flushRun() throws IOException {
      if (runStart < 0) {
        return;
      }
      out.writeLong(runStart);
      out.writeInt(runCount);
      out.write(runData, 0, runCount * PageRuns.PAGE);
      runStart = -1;
      runCount = 0;
    }

    public Stats stats() {
      return new Stats(scanned, changed, changed * PageRuns.PAGE);
    }

    /** The round reached the target: it holds these pages now. */
    public void commit() {
      held.computeIfAbsent(pid, p -> new LongLongHashMap()).putAll(pending);
      long[] changedNow = pending.keys().toArray();
      java.util.Arrays.sort(changedNow);
      lastChanged.put(pid, changedNow);
      pending.clear();
    }

    @Override
    public void close() throws IOException {
      flushRun();
      out.writeLong(-1L);
      out.close();
    }

    public Path file() {
      return file;
    }
  }

  /** What {@link #writeRecipes} did: the images it replaced and the pages it sent or kept. */
  public record Recipes(Set<String> replacedImages, Stats stats) {}

  /**
   * Frozen round: for each {@code pagemap-PID.img} of a process that had pre-copy rounds,
   * writes a recipe beside its {@code pages-N.img} that carries only the pages whose contents
   * differ from what the target holds. The pages images stay (the source may need them to
   * resume); the caller sends the recipes instead of them.
   */
  public Recipes writeRecipes(Path imagesDir) throws IOException {
    Set<String> replaced = new TreeSet<>();
    Stats total = Stats.NONE;
    try (Stream<Path> files = Files.list(imagesDir)) {
      for (Path pm : (Iterable<Path>) files.sorted()::iterator) {
        long pid = CriuPagemap.pidOf(pm);
        if (pid < 0 || !held.containsKey(pid)) {
          continue;
        }
        CriuPagemap map = CriuPagemap.read(pm);
        Path pages = imagesDir.resolve(map.pagesFileName());
        if (!Files.exists(pages)) {
          continue;
        }
        total = total.plus(writeRecipe(pid, map, pages, imagesDir.resolve(map.pagesFileName() + PageRuns.RECIPE_SUFFIX)));
        replaced.add(map.pagesFileName());
      }
    }
    return new Recipes(replaced, total);
  }

  private Stats writeRecipe(long pid, CriuPagemap map, Path pages, Path recipe) throws IOException {
    LongLongHashMap known = held.get(pid);
    long scanned = 0;
    long literal = 0;
    ByteBuffer chunk = ByteBuffer.allocateDirect(RunWriter.MAX_PAGES * PageRuns.PAGE);
    try (FileChannel in = FileChannel.open(pages, StandardOpenOption.READ);
        FileChannel outCh = FileChannel.open(recipe, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE);
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(Channels.newOutputStream(outCh), 1 << 16))) {
      out.writeLong(PageRuns.RECIPE_MAGIC);
      out.writeLong(pid);
      RunWriter runs = new RunWriter(out);
      for (CriuPagemap.Entry e : map.entries()) {
        if (!e.inPagesFile()) {
          continue;
        }
        for (int done = 0; done < e.nrPages(); ) {
          int n = Math.min(RunWriter.MAX_PAGES, e.nrPages() - done);
          chunk.clear().limit(n * PageRuns.PAGE);
          while (chunk.hasRemaining()) {
            if (in.read(chunk) < 0) {
              throw new IOException(pages + " is shorter than its pagemap says (" + in.size() + " bytes)");
            }
          }
          for (int i = 0; i < n; i++) {
            long addr = e.vaddr() + (long) (done + i) * PageRuns.PAGE;
            boolean same = holds(known, addr, PageHash.of(chunk, i * PageRuns.PAGE));
            runs.add(same ? PageRuns.KEPT : PageRuns.LITERAL, addr, chunk, i * PageRuns.PAGE);
            literal += same ? 0 : 1;
            scanned++;
          }
          done += n;
        }
      }
      runs.flush();
      out.writeByte(PageRuns.END);
    }
    return new Stats(scanned, literal, Files.size(recipe));
  }

  /** Coalesces consecutive pages of the same kind into one record. */
  private static final class RunWriter {
    static final int MAX_PAGES = 256;
    private final DataOutputStream out;
    private final byte[] literal = new byte[MAX_PAGES * PageRuns.PAGE];
    private byte kind;
    private long vaddr = -1;
    private int count;

    RunWriter(DataOutputStream out) {
      this.out = out;
    }

    void add(byte k, long addr, ByteBuffer page, int at) throws IOException {
      if (vaddr >= 0 && (k != kind || addr != vaddr + (long) count * PageRuns.PAGE || count == MAX_PAGES)) {
        flush();
      }
      if (vaddr < 0) {
        kind = k;
        vaddr = addr;
      }
      if (k == PageRuns.LITERAL) {
        page.get(at, literal, count * PageRuns.PAGE, PageRuns.PAGE);
      }
      count++;
    }

    void flush() throws IOException {
      if (vaddr < 0) {
        return;
      }
      out.writeByte(kind);
      out.writeLong(vaddr);
      out.writeInt(count);
      if (kind == PageRuns.LITERAL) {
        out.write(literal, 0, count * PageRuns.PAGE);
      }
      vaddr = -1;
      count = 0;
    }
  }

  /** Forgets everything (the target's copy is in doubt, e.g. after a failed round). */
  public void clear() {
    held.clear();
    lastChanged.clear();
  }

  /**
   * The addresses of {@code pid}'s pages that the last round sent because they had changed since
   * the round before, in order: the pages the app wrote most recently, likely the first it
   * touches again. Empty before any round.
   */
  public long[] lastRoundChanged(long pid) {
    return lastChanged.getOrDefault(pid, new long[0]).clone();
  }
}
