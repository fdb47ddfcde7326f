package dev.ferry.transfer.memory;

import java.nio.ByteBuffer;
import net.jpountz.xxhash.XXHash64;
import net.jpountz.xxhash.XXHashFactory;

/** 64-bit content hash of one page (xxHash64, native where lz4-java has it: ~GB/s per core). */
public final class PageHash {
  private static final XXHash64 HASH = XXHashFactory.fastestInstance().hash64();
  private static final long SEED = 0x5eed_f00dL;

  private PageHash() {}

  public static long of(ByteBuffer buf, int offset) {
    return HASH.hash(buf, offset, PageRuns.PAGE, SEED);
  }
}
