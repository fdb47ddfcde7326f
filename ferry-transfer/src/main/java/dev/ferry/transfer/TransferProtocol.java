package dev.ferry.transfer;

/**
 * The wire format of one transfer, source agent to target agent, over one TCP connection:
 *
 * <pre>
 *   "FERRY-XFER-3\n"  UTF(transferId)  byte start (FRESH | INCREMENTAL: add to what an earlier
 *                                                   round sent | RESUME: go on after a broken connection)
 *   on RESUME the target answers first: byte RESUME_AT, int entriesDone, UTF(file in progress or ""),
 *                                       long its verified length, long bytesSoFar, int filesSoFar
 *                                     | byte ERROR, UTF(reason)
 *   entry*  where entry = byte kind, UTF(relative path), int mode, then
 *     DELETE:  nothing more (the path is gone at the source since the earlier round)
 *     DIR:     nothing more
 *     SYMLINK: UTF(link target)
 *     FILE:    long size, long startOffset (0, or where a resumed file goes on), chunk*, int 0,
 *              int crc32c(whole file)
 *              where chunk = int length (original), body, int crc32c(original chunk)
 *              and body = byte codec, then RAW: length bytes | ZERO: nothing | LZ4: int n, n bytes
 *              (see ChunkCodec)
 *     FILE_RANGE: long fileSize, long rangeStart, long rangeEnd, long startOffset (rangeStart, or
 *              where a resumed range goes on), chunk*, int 0, int crc32c(the range's bytes):
 *              one connection's share of a file that a ParallelSender cut into ranges (Lanes);
 *              the other ranges come on the transfer's other connections, each a transfer of its own
 *   byte END, long totalBytes, int files
 * and the target answers: byte OK | byte ERROR, UTF(reason)
 * </pre>
 *
 * Every chunk and every file is checked (CRC32C) as it arrives; a mismatch names the file and
 * the offset, and the receiver refuses the whole transfer. A connection that breaks is not a
 * refusal: the receiver keeps what it verified, and a sender that reconnects within the
 * receiver's lifetime resumes from the last verified chunk ({@link ResumableTransfers}).
 */
final class TransferProtocol {
  static final String MAGIC = "FERRY-XFER-3\n";
  static final byte FRESH = 0;
  static final byte INCREMENTAL = 1;
  static final byte RESUME = 2;
  static final byte RESUME_AT = 0x52;
  static final byte DIR = 1;
  static final byte FILE = 2;
  static final byte SYMLINK = 3;
  static final byte DELETE = 4;
  static final byte FILE_RANGE = 5;
  static final byte END = 0;
  static final byte OK = 0x4f;
  static final byte ERROR = 0x45;
  static final int CHUNK = 1 << 20;

  private TransferProtocol() {}

  static int mode(java.util.Set<java.nio.file.attribute.PosixFilePermission> perms) {
    int m = 0;
    for (var p : perms) {
      m |= 1 << (8 - p.ordinal());
    }
    return m;
  }

  static java.util.Set<java.nio.file.attribute.PosixFilePermission> perms(int mode) {
    var set = java.util.EnumSet.noneOf(java.nio.file.attribute.PosixFilePermission.class);
    for (var p : java.nio.file.attribute.PosixFilePermission.values()) {
      if ((mode & (1 << (8 - p.ordinal()))) != 0) {
        set.add(p);
      }
    }
    return set;
  }
}
