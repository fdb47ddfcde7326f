package dev.ferry.transfer;

/**
 * The wire format of one transfer, source agent to target agent, over one TCP connection:
 *
 * <pre>
 *   "FERRY-XFER-2\n"  UTF(transferId)  boolean(incremental: add to what an earlier round sent)
 *   entry*  where entry = byte kind, UTF(relative path), int mode, then
 *     DELETE:  nothing more (the path is gone at the source since the earlier round)
 *     DIR:     nothing more
 *     SYMLINK: UTF(link target)
 *     FILE:    long size, chunk*, int 0, int crc32c(whole file)
 *              where chunk = int length (original), body, int crc32c(original chunk)
 *              and body = byte codec, then RAW: length bytes | ZERO: nothing | LZ4: int n, n bytes
 *              (see ChunkCodec)
 *   byte END, long totalBytes, int files
 * and the target answers: byte OK | byte ERROR, UTF(reason)
 * </pre>
 *
 * Every chunk and every file is checked (CRC32C) as it arrives; a mismatch names the file and
 * the offset, and the receiver refuses the whole transfer.
 */
final class TransferProtocol {
  static final String MAGIC = "FERRY-XFER-2\n";
  static final byte DIR = 1;
  static final byte FILE = 2;
  static final byte SYMLINK = 3;
  static final byte DELETE = 4;
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
