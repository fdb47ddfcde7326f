package dev.ferry.transfer;

/** How a transfer encodes its chunks. */
public enum Compression {
  /** Every chunk as it is (a baseline, or for data known not to compress). */
  OFF,
  /**
   * All-zero chunks travel as a marker and land as holes; other chunks are LZ4-compressed when
   * that makes them at least an eighth smaller. After a run of chunks that did not compress, only
   * every 32nd is tried, so incompressible data costs next to no compression work.
   */
  AUTO
}
