package dev.ferry.transfer.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.CodedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pre-copy without dirty tracking, source and target together: rounds, then a frozen "dump"
 * whose pages image is rebuilt on the target from the rounds and a recipe. The rebuilt image
 * must equal CRIU's byte for byte, and the recipe must carry only pages changed since.
 */
class MemoryPrecopyTest {
  static final int PAGE = 4096;
  static final long PID = 1;
  @TempDir Path tmp;
  final FakeAddressSpace memory = new FakeAddressSpace(42);

  /** Sends one round of the whole address space, as the agent does, and "delivers" it. */
  SourcePages.Stats round(SourcePages src, int k) throws IOException {
    Path f = tmp.resolve("target/mem/round-" + k + "/" + PID + ".pages");
    SourcePages.RoundFile rf = src.openRound(PID, f);
    for (var e : memory.pages.entrySet()) {
      rf.pages(e.getKey(), ByteBuffer.wrap(e.getValue()), 1);
    }
    rf.close();
    rf.commit();
    return rf.stats();
  }

  /** Writes what CRIU's dump would: pagemap-1.img (head + entries) and pages-7.img. */
  Path dump() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("source-images"));
    ByteArrayOutputStream pm = new ByteArrayOutputStream();
    pm.write(le(CriuPagemap.IMG_COMMON_MAGIC));
    pm.write(le(CriuPagemap.PAGEMAP_MAGIC));
    entry(pm, out -> out.writeUInt32(1, 7));
    ByteArrayOutputStream pages = new ByteArrayOutputStream();
    long runStart = -1;
    int run = 0;
    for (var e : memory.pages.entrySet()) {
      if (runStart >= 0 && e.getKey() != runStart + (long) run * PAGE) {
        writeEntry(pm, runStart, run);
        runStart = -1;
      }
      if (runStart < 0) {
        runStart = e.getKey();
        run = 0;
      }
      run++;
      pages.write(e.getValue());
    }
    writeEntry(pm, runStart, run);
    Files.write(dir.resolve("pagemap-1.img"), pm.toByteArray());
    Files.write(dir.resolve("pages-7.img"), pages.toByteArray());
    return dir;
  }

  void writeEntry(ByteArrayOutputStream pm, long vaddr, int n) throws IOException {
    entry(pm, out -> {
      out.writeUInt64(1, vaddr);
      out.writeUInt32(2, 0); // CRIU 4 writes the count into field 5
      out.writeUInt32(4, CriuPagemap.PE_PRESENT | CriuPagemap.PE_LAZY);
      out.writeUInt64(5, n);
    });
  }

  interface Fields {
    void write(CodedOutputStream out) throws IOException;
  }

  static void entry(ByteArrayOutputStream to, Fields f) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    CodedOutputStream out = CodedOutputStream.newInstance(b);
    f.write(out);
    out.flush();
    to.write(le(b.size()));
    to.write(b.toByteArray());
  }

  static byte[] le(int v) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
  }

  @Test
  void frozenRoundSendsOnlyPagesChangedSinceTheLastRoundAndTheTargetRebuildsTheImageExactly() throws IOException {
    memory.fill(0x10000, 300);
    memory.fill(0x7f0000000000L, 40);
    SourcePages src = new SourcePages();

    SourcePages.Stats r1 = round(src, 1);
    assertThat(r1.changedPages()).isEqualTo(340);
    memory.dirty(0x10000 + 5 * PAGE);
    memory.dirty(0x10000 + 6 * PAGE);
    SourcePages.Stats r2 = round(src, 2);
    assertThat(r2.scannedPages()).isEqualTo(340);
    assertThat(r2.changedPages()).isEqualTo(2);

    // frozen: one page changed since round 2, and a page never sent before
    memory.dirty(0x7f0000000000L + 3 * PAGE);
    memory.fill(0x10000 + 300L * PAGE, 1);
    Path images = dump();
    byte[] criuPages = Files.readAllBytes(images.resolve("pages-7.img"));
    SourcePages.Recipes recipes = src.writeRecipes(images);
    assertThat(recipes.replacedImages()).containsExactly("pages-7.img");
    assertThat(recipes.stats().scannedPages()).isEqualTo(341);
    assertThat(recipes.stats().changedPages()).isEqualTo(2);
    assertThat(recipes.stats().bytesWritten()).isLessThan(3 * PAGE);

    // the target received everything but pages-7.img
    Path target = Files.createDirectories(tmp.resolve("target/images"));
    Files.copy(images.resolve("pages-7.img.ferrydelta"), target.resolve("pages-7.img.ferrydelta"));
    TargetPages.Rebuilt r = TargetPages.rebuild(tmp.resolve("target/mem"), target);
    assertThat(r.literalPages()).isEqualTo(2);
    assertThat(r.keptPages()).isEqualTo(339);
    assertThat(Files.readAllBytes(target.resolve("pages-7.img"))).isEqualTo(criuPages);
    assertThat(target.resolve("pages-7.img.ferrydelta")).doesNotExist();
  }

  @Test
  void aRecipeKeepingAPageNoRoundDeliveredIsRefused() throws IOException {
    memory.fill(0x10000, 4);
    SourcePages src = new SourcePages();
    round(src, 1);
    Path images = dump();
    src.writeRecipes(images);
    Path target = Files.createDirectories(tmp.resolve("elsewhere/images"));
    Files.copy(images.resolve("pages-7.img.ferrydelta"), target.resolve("pages-7.img.ferrydelta"));
    // the rounds never reached this target
    assertThatThrownBy(() -> TargetPages.rebuild(tmp.resolve("elsewhere/mem"), target))
        .hasMessageContaining("no pre-copy round delivered");
  }

  @Test
  void pagemapOfARealLayoutIsRead() throws IOException {
    memory.fill(0x400000, 3);
    memory.fill(0x500000, 2);
    Path images = dump();
    CriuPagemap m = CriuPagemap.read(images.resolve("pagemap-1.img"));
    assertThat(m.pagesId()).isEqualTo(7);
    assertThat(m.entries()).extracting(CriuPagemap.Entry::vaddr).containsExactly(0x400000L, 0x500000L);
    assertThat(m.entries()).extracting(CriuPagemap.Entry::nrPages).containsExactly(3, 2);
    assertThat(CriuPagemap.pidOf(images.resolve("pagemap-1.img"))).isEqualTo(1);
    assertThat(CriuPagemap.pidOf(images.resolve("pagemap-shmem-1.img"))).isEqualTo(-1);
  }
}
