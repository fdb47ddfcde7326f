package dev.ferry.transfer.memory;

/**
 * File formats of memory pre-copy, big-endian, 4 KiB pages.
 *
 * <p>A round file ({@code mem/round-K/PID.pages}) holds pages of one process as sent in round
 * K: {@link #ROUND_MAGIC}, then records {@code vaddr:long count:int data:count*4096}, then
 * {@code -1L}.
 *
 * <p>A recipe ({@code pages-N.img.ferrydelta}, sent in the frozen round in place of CRIU's
 * {@code pages-N.img}) says how to rebuild that image page by page, in its order:
 * {@link #RECIPE_MAGIC}, {@code pid:long}, then records {@code kind:byte vaddr:long count:int}
 * followed by the pages for {@link #LITERAL} records; {@link #KEPT} records name pages the
 * target already holds from a round, unchanged since; {@link #END} closes it.
 */
final class PageRuns {
  static final int PAGE = 4096;
  static final long ROUND_MAGIC = 0x4652595041474531L; // "FRYPAGE1"
  static final long RECIPE_MAGIC = 0x4652595245435031L; // "FRYRECP1"
  static final byte END = 0;
  static final byte KEPT = 1;
  static final byte LITERAL = 2;
  static final String RECIPE_SUFFIX = ".ferrydelta";

  private PageRuns() {}
}
