package dev.ferry.transfer.memory;

/**
 * The page pump's stream between a source agent and a target agent, big-endian.
 *
 * <p>Source to target: records {@code kind:byte pid:long vaddr:long count:int} followed by the
 * pages for {@link #LITERAL}; {@link #KEPT} says the target's pre-copy copy of those pages is
 * current; {@link #END} with {@code pages:long} closes the stream. Each record's pages are
 * covered by a CRC32C ({@code crc:int}) after the data, or after the header for KEPT.
 *
 * <p>Two connections, each opened with its lane byte: bulk ({@link #LANE_BULK}: the sequential
 * pass, END with the total of both lanes, then ACK back) and priority ({@link #LANE_PRIORITY}:
 * WANTs from the target, their pages back, END with its own count).
 *
 * <p>Target to source: {@link #WANT} {@code pid:long vaddr:long count:int} asks for pages a
 * restored process (or CRIU's daemon filling it) is waiting for, served ahead of the
 * sequential pass; {@link #ACK}
 * {@code pages:long} confirms that everything arrived and verified.
 */
final class PumpProtocol {
  static final byte END = 0;
  static final byte KEPT = 1;
  static final byte LITERAL = 2;
  static final byte WANT = 3;
  static final byte ACK = 4;
  /** Target to source: {@code reason:UTF}, the stream was refused (e.g. a checksum mismatch). */
  static final byte REFUSED = 5;
  /** First byte of each connection: which lane it is. */
  static final byte LANE_BULK = 'B';
  static final byte LANE_PRIORITY = 'P';
  static final int PAGE = 4096;
  /** Pages per record: 1 MiB. */
  static final int MAX_RUN = 256;

  private PumpProtocol() {}
}
