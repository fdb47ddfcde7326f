package dev.ferry.transfer.memory;

import com.google.protobuf.CodedInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CRIU's {@code pagemap-PID.img}: which virtual pages of a process its {@code pages-N.img}
 * holds, in order. The file is an image magic followed by length-prefixed protobuf messages:
 * a {@code pagemap_head} (field 1: pages_id, the N of pages-N.img) and then one
 * {@code pagemap_entry} per run (1: vaddr, 2: compat_nr_pages (0 since CRIU 4), 3: in_parent,
 * 4: flags, 5: nr_pages). Only entries with {@link #PE_PRESENT} take space in pages-N.img, in
 * entry order; a missing flags field means present. The PID in the name is the pid inside the
 * container's pid namespace.
 */
public record CriuPagemap(int pagesId, List<Entry> entries) {
  static final int IMG_COMMON_MAGIC = 0x54564319;
  static final int IMG_SERVICE_MAGIC = 0x55105940;
  static final int PAGEMAP_MAGIC = 0x56084025;
  /** pagemap_entry flags (criu/include/pagemap.h). */
  public static final int PE_PARENT = 1;
  public static final int PE_LAZY = 2;
  public static final int PE_PRESENT = 4;

  /** A run of pages; {@link #inPagesFile()} says whether its contents are in pages-N.img. */
  public record Entry(long vaddr, int nrPages, boolean inParent, int flags) {
    public boolean inPagesFile() {
      return (flags & PE_PRESENT) != 0;
    }
  }

  /** The pid in a {@code pagemap-PID.img} file name, or -1 for other files. */
  public static long pidOf(Path file) {
    String n = file.getFileName().toString();
    if (!n.startsWith("pagemap-") || !n.endsWith(".img")) {
      return -1;
    }
    String mid = n.substring("pagemap-".length(), n.length() - ".img".length());
    return mid.chars().allMatch(Character::isDigit) && !mid.isEmpty() ? Long.parseLong(mid) : -1;
  }

  public static CriuPagemap read(Path file) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    int magic = b.getInt();
    if (magic == IMG_COMMON_MAGIC || magic == IMG_SERVICE_MAGIC) {
      magic = b.getInt();
    }
    if (magic != PAGEMAP_MAGIC) {
      throw new IOException(file + " is not a CRIU pagemap image (magic 0x" + Integer.toHexString(magic) + ")");
    }
    int pagesId = -1;
    List<Entry> entries = new ArrayList<>();
    boolean head = true;
    while (b.remaining() >= 4) {
      int len = b.getInt();
      if (len < 0 || len > b.remaining()) {
        throw new IOException(file + ": truncated entry at offset " + (b.position() - 4));
      }
      CodedInputStream in = CodedInputStream.newInstance(b.array(), b.position(), len);
      b.position(b.position() + len);
      long vaddr = 0;
      long compatNr = 0;
      long nr = -1;
      int flags = -1;
      boolean inParent = false;
      for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
        switch (tag >>> 3) {
          case 1 -> {
            if (head) {
              pagesId = in.readUInt32();
            } else {
              vaddr = in.readUInt64();
            }
          }
          case 2 -> compatNr = in.readUInt32() & 0xffffffffL;
          case 3 -> inParent = in.readBool();
          case 4 -> flags = in.readUInt32();
          case 5 -> nr = in.readUInt64();
          default -> in.skipField(tag);
        }
      }
      if (head) {
        head = false;
      } else {
        // as CRIU reads older images: no flags means present, in_parent means parent
        int f = flags < 0 ? PE_PRESENT : flags;
        if (inParent) {
          f |= PE_PARENT;
        }
        long pages = nr >= 0 ? nr : compatNr;
        if (pages > Integer.MAX_VALUE) {
          throw new IOException(file + ": entry at 0x" + Long.toHexString(vaddr) + " claims " + pages + " pages");
        }
        entries.add(new Entry(vaddr, (int) pages, inParent, f));
      }
    }
    if (pagesId < 0) {
      throw new IOException(file + " has no pagemap head");
    }
    return new CriuPagemap(pagesId, List.copyOf(entries));
  }

  /** A run of pages a lazy dump left in the frozen process, to be fetched later. */
  public record LazyRange(long pid, long vaddr, int nrPages) {}

  /** Every lazy (not dumped) run of every process's pagemap in {@code imagesDir}. */
  public static List<LazyRange> lazyRanges(Path imagesDir) throws IOException {
    List<LazyRange> out = new ArrayList<>();
    try (var files = Files.list(imagesDir)) {
      for (Path p : (Iterable<Path>) files.sorted()::iterator) {
        long pid = pidOf(p);
        if (pid < 0) {
          continue;
        }
        for (Entry e : read(p).entries()) {
          if ((e.flags() & PE_LAZY) != 0 && !e.inPagesFile()) {
            out.add(new LazyRange(pid, e.vaddr(), e.nrPages()));
          }
        }
      }
    }
    return out;
  }

  /** Name of the pages image this pagemap points at. */
  public String pagesFileName() {
    return "pages-" + pagesId + ".img";
  }
}
