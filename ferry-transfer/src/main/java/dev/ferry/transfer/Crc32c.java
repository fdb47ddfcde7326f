package dev.ferry.transfer;

import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * CRC32C of buffers, and of a whole file from the checksums of its chunks ({@link #combine}):
 * each byte is checksummed once, not once for its chunk and again for its file.
 */
final class Crc32c {
  /** CRC32C's polynomial, bit-reversed (as the checksum is computed). */
  private static final int POLY = 0x82F63B78;
  /** X2N[k] = x^(2^k) modulo the polynomial. */
  private static final int[] X2N = new int[32];

  static {
    int p = 1 << 30; // x^1
    X2N[0] = p;
    for (int k = 1; k < 32; k++) {
      p = multModP(p, p);
      X2N[k] = p;
    }
  }

  private Crc32c() {}

  /** CRC32C of {@code buf}'s remaining bytes; its position is left as it was. */
  static int of(ByteBuffer buf) {
    CRC32C crc = new CRC32C();
    crc.update(buf.duplicate());
    return (int) crc.getValue();
  }

  /** CRC32C of {@code n} zero bytes. */
  static int ofZeros(int n) {
    CRC32C crc = new CRC32C();
    ChunkCodec.zeroUpdate(crc, n);
    return (int) crc.getValue();
  }

  /**
   * CRC32C of A followed by B, from CRC32C(A), CRC32C(B) and B's length (zlib's
   * crc32_combine, for CRC32C's polynomial). The CRC32C of nothing is 0.
   */
  static int combine(int crcA, int crcB, long lengthB) {
    return multModP(xPow8n(lengthB), crcA) ^ crcB;
  }

  /** a * b modulo the polynomial, in the bit-reversed representation. */
  private static int multModP(int a, int b) {
    int m = 1 << 31;
    int p = 0;
    while (true) {
      if ((a & m) != 0) {
        p ^= b;
        if ((a & (m - 1)) == 0) {
          return p;
        }
      }
      m >>>= 1;
      b = (b & 1) != 0 ? (b >>> 1) ^ POLY : b >>> 1;
    }
  }

  /** x^(8 * n) modulo the polynomial: appending n zero bytes. */
  private static int xPow8n(long n) {
    int p = 1 << 31; // x^0
    int k = 3;
    while (n != 0) {
      if ((n & 1) != 0) {
        p = multModP(X2N[k & 31], p);
      }
      n >>>= 1;
      k++;
    }
    return p;
  }
}
