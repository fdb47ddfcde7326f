package dev.ferry.transfer;

/**
 * How a transfer over several connections ("lanes", see {@link ParallelSender}) shares out its
 * plan: lane {@code lane} of {@code count}. Directories, symbolic links and deletions go on lane
 * 0; a file under {@link #SPLIT_MIN} goes whole on one lane (by turns); a larger file is cut into
 * {@code count} chunk-aligned ranges, one per lane, each sent as a {@code FILE_RANGE} with its
 * own checksum. One lane is the ordinary single-connection transfer.
 */
record Lanes(int lane, int count) {
  static final Lanes ONE = new Lanes(0, 1);
  /** Files from this size on are cut into ranges, one per lane. */
  static final long SPLIT_MIN = 4L * TransferProtocol.CHUNK;

  Lanes {
    if (count < 1 || lane < 0 || lane >= count) {
      throw new IllegalArgumentException("lane " + lane + " of " + count);
    }
  }

  /** Whether a file of {@code size} bytes is cut into ranges. */
  boolean split(long size) {
    return count > 1 && size >= SPLIT_MIN;
  }

  /** Whether this lane carries the whole of the {@code ordinal}-th item of the plan (a file not split, a directory, ...). */
  boolean carriesWhole(byte kind, int ordinal) {
    return kind == TransferProtocol.FILE ? ordinal % count == lane : lane == 0;
  }

  /** This lane's range {@code [start, end)} of a split file of {@code size} bytes; empty when start == end. */
  long[] range(long size) {
    long chunks = (size + TransferProtocol.CHUNK - 1) / TransferProtocol.CHUNK;
    long per = (chunks + count - 1) / count;
    long start = Math.min(size, lane * per * TransferProtocol.CHUNK);
    long end = Math.min(size, (lane + 1) * per * TransferProtocol.CHUNK);
    return new long[] {start, end};
  }
}
