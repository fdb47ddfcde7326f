package dev.ferry.runtime;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Reads a running process's private memory through procfs, without stopping it: the pages
 * CRIU would dump (present, private, not file-backed). This is what lets Ferry pre-copy memory
 * on kernels without soft-dirty tracking: a round reads every such page while the app runs,
 * and later rounds compare contents instead of asking the kernel what changed.
 *
 * <p>Pages read from a running process may be torn (written while read); that is harmless as
 * long as the caller remembers exactly the bytes it shipped: the frozen round compares the
 * frozen page with those bytes' hash and sends the page again when they differ.
 */
public final class ProcessMemory {
  public static final int PAGE = 4096;
  private static final long PM_PRESENT = 1L << 63;
  private static final long PM_SWAPPED = 1L << 62;
  private static final long PM_FILE_OR_SHARED = 1L << 61;
  /** Pages read per call: big enough for speed, small enough for a modest buffer. */
  private static final int BATCH_PAGES = 256;

  private ProcessMemory() {}

  /** Receives runs of consecutive pages; the buffer is only valid during the call. */
  @FunctionalInterface
  public interface PageVisitor {
    void pages(long vaddr, ByteBuffer data, int count) throws IOException;
  }

  /** A mapping that may hold private pages CRIU dumps. */
  record Region(long start, long end) {}

  /** Pids (on this host) of every process in the same pid namespace as {@code initPid}. */
  public static List<Long> processesLike(long initPid) throws IOException {
    Path ns = Path.of("/proc", Long.toString(initPid), "ns", "pid");
    String target = Files.readSymbolicLink(ns).toString();
    List<Long> pids = new ArrayList<>();
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      for (Path p : (Iterable<Path>) procs::iterator) {
        String name = p.getFileName().toString();
        if (!name.chars().allMatch(Character::isDigit)) {
          continue;
        }
        try {
          if (Files.readSymbolicLink(p.resolve("ns/pid")).toString().equals(target)) {
            pids.add(Long.parseLong(name));
          }
        } catch (IOException e) {
          // gone meanwhile, or a kernel thread
        }
      }
    }
    return pids;
  }

  /**
   * The pid of a host process inside its own pid namespace (what CRIU names image files after),
   * or -1 when the process has exited meanwhile.
   */
  public static long nsPid(long pid) throws IOException {
    List<String> status;
    try {
      status = Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"));
    } catch (java.nio.file.FileSystemException e) {
      if (gone(e)) {
        return -1;
      }
      throw e;
    }
    for (String line : status) {
      if (line.startsWith("NSpid:")) {
        String[] f = line.substring(6).trim().split("\\s+");
        return Long.parseLong(f[f.length - 1]);
      }
    }
    return pid;
  }

  /** The process tracing {@code pid} (CRIU, while it dumps), 0 when none, or when the process is gone. */
  public static long tracerPid(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith("TracerPid:")) {
          return Long.parseLong(line.substring(10).strip());
        }
      }
    } catch (IOException | NumberFormatException e) {
      // gone
    }
    return 0;
  }

  /** Parses /proc/PID/maps: private mappings, without the kernel's special areas. */
  static List<Region> privateRegions(List<String> mapsLines) {
    List<Region> out = new ArrayList<>();
    for (String line : mapsLines) {
      String[] f = line.trim().split("\\s+", 6);
      if (f.length < 5 || f[1].length() < 4 || f[1].charAt(3) != 'p') {
        continue;
      }
      String name = f.length == 6 ? f[5] : "";
      if (name.equals("[vsyscall]") || name.equals("[vvar]") || name.equals("[vdso]") || name.startsWith("[vvar")) {
        continue;
      }
      if (f[1].charAt(0) != 'r' && f[1].charAt(1) != 'w') {
        continue; // PROT_NONE guard areas hold nothing
      }
      int dash = f[0].indexOf('-');
      out.add(new Region(Long.parseUnsignedLong(f[0].substring(0, dash), 16),
          Long.parseUnsignedLong(f[0].substring(dash + 1), 16)));
    }
    return out;
  }

  /**
   * Visits every present, private, anonymous page of process {@code pid}, in address order,
   * as runs of at most {@value #BATCH_PAGES} pages.
   *
   * @return pages visited
   */
  public static long scan(long pid, PageVisitor visitor) throws IOException {
    Path proc = Path.of("/proc", Long.toString(pid));
    List<Region> regions;
    try {
      regions = privateRegions(Files.readAllLines(proc.resolve("maps")));
    } catch (java.nio.file.FileSystemException e) {
      if (gone(e)) {
        return 0;
      }
      throw e;
    }
    long visited = 0;
    ByteBuffer entries = ByteBuffer.allocateDirect(BATCH_PAGES * 8).order(ByteOrder.nativeOrder());
    ByteBuffer data = ByteBuffer.allocateDirect(BATCH_PAGES * PAGE);
    try (FileChannel pagemap = FileChannel.open(proc.resolve("pagemap"), StandardOpenOption.READ);
        FileChannel mem = FileChannel.open(proc.resolve("mem"), StandardOpenOption.READ)) {
      for (Region r : regions) {
        for (long page = r.start(); page < r.end(); page += (long) BATCH_PAGES * PAGE) {
          int n = (int) Math.min(BATCH_PAGES, (r.end() - page) / PAGE);
          entries.clear().limit(n * 8);
          if (!readFully(pagemap, entries, (page / PAGE) * 8)) {
            // a pagemap reads empty once its process has exited (the pod's short-lived
            // processes do, mid-scan): what it held is gone with it
            return visited;
          }
          entries.flip();
          int runStart = -1;
          for (int i = 0; i <= n; i++) {
            boolean wanted = false;
            if (i < n) {
              long e = entries.getLong(i * 8);
              wanted = (e & (PM_PRESENT | PM_SWAPPED)) != 0 && (e & PM_FILE_OR_SHARED) == 0;
            }
            if (wanted && runStart < 0) {
              runStart = i;
            } else if (!wanted && runStart >= 0) {
              int count = i - runStart;
              long vaddr = page + (long) runStart * PAGE;
              data.clear().limit(count * PAGE);
              if (readFully(mem, data, vaddr)) {
                data.flip();
                visitor.pages(vaddr, data, count);
                visited += count;
              }
              runStart = -1;
            }
          }
        }
      }
    } catch (java.nio.file.FileSystemException e) {
      if (gone(e)) {
        return visited; // a short-lived process of the pod: what it held is gone with it
      }
      throw e;
    }
    return visited;
  }

  /**
   * Whether a failure to open or read a process's /proc files means that it exited: its
   * directory is gone, or it is exiting or a zombie (ESRCH, "No such process").
   */
  private static boolean gone(java.nio.file.FileSystemException e) {
    return e instanceof NoSuchFileException || "No such process".equals(e.getReason());
  }

  /**
   * Reads {@code buf.remaining()} bytes of process {@code pid}'s memory at {@code vaddr} (a
   * frozen process, after a lazy dump, reads the same as a running one).
   *
   * @return false when that range is not mapped
   */
  public static boolean read(FileChannel mem, long vaddr, ByteBuffer buf) throws IOException {
    return readFully(mem, buf, vaddr);
  }

  /** Opens a process's memory for {@link #read}. */
  public static FileChannel open(long pid) throws IOException {
    return FileChannel.open(Path.of("/proc", Long.toString(pid), "mem"), StandardOpenOption.READ);
  }

  /** Reads until the buffer is full; false when the range vanished (unmapped meanwhile). */
  private static boolean readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
    long pos = position;
    try {
      while (buf.hasRemaining()) {
        int n = ch.read(buf, pos);
        if (n <= 0) {
          return false;
        }
        pos += n;
      }
      return true;
    } catch (IOException e) {
      if (String.valueOf(e.getMessage()).contains("Input/output error")) {
        return false; // the mapping changed under us; the frozen round will catch what it held
      }
      throw e;
    }
  }
}
