package dev.ferry.transfer;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * The body of one chunk on the wire: {@code byte codec}, then for {@link #RAW} the bytes, for
 * {@link #LZ4} {@code int length} and the compressed bytes, for {@link #ZERO} nothing. One codec
 * per stream direction: it keeps the state that decides whether compressing is worth trying.
 */
final class ChunkCodec {
  static final byte RAW = 0;
  static final byte ZERO = 1;
  static final byte LZ4 = 2;
  /** Chunks that must not compress in a row before compression is only tried now and then. */
  private static final int MISSES_BEFORE_BACKOFF = 4;
  private static final int TRY_EVERY_WHEN_BACKED_OFF = 32;
  private static final byte[] ZEROS = new byte[TransferProtocol.CHUNK];
  private static final LZ4Factory LZ4_FACTORY = LZ4Factory.fastestInstance();

  private final Compression mode;
  private final LZ4Compressor compressor = LZ4_FACTORY.fastCompressor();
  /**
   * The safe decompressor: it is told the compressed length and never reads or writes outside its
   * buffers, whatever a peer sends. (lz4-java's "fast" one runs in Java, byte by byte, into a direct
   * buffer: ~0.5 GB/s here against 4-6 GB/s for this one.)
   */
  private final LZ4SafeDecompressor decompressor = LZ4_FACTORY.safeDecompressor();
  private byte[] packed = new byte[0];
  /** Compressed bodies read for a direct chunk buffer: JNI then works on two direct buffers, no copy. */
  private ByteBuffer packedDirect;
  private int misses;
  private long chunks;
  /** Counters for the report: chunks sent as zeros, compressed, as they were; bytes on the wire. */
  long zeroChunks;
  long compressedChunks;
  long rawChunks;
  long wireBytes;

  ChunkCodec(Compression mode) {
    this.mode = mode;
  }

  /** How a chunk's bytes go on the wire when they go as they are. */
  @FunctionalInterface
  interface RawBody {
    void send() throws IOException;
  }

  /**
   * Writes {@code chunk}'s remaining bytes (its position is left as it was) in the cheapest form
   * that pays; a chunk sent as it is goes by {@code raw} (from the buffer, or from the file
   * without passing through Java).
   */
  void write(DataOutputStream out, ByteBuffer chunk, RawBody raw) throws IOException {
    chunks++;
    int n = chunk.remaining();
    if (mode == Compression.AUTO) {
      if (chunk.mismatch(ByteBuffer.wrap(ZEROS, 0, n)) == -1) {
        out.writeByte(ZERO);
        zeroChunks++;
        wireBytes += 1;
        return;
      }
      if (misses < MISSES_BEFORE_BACKOFF || chunks % TRY_EVERY_WHEN_BACKED_OFF == 0) {
        int max = compressor.maxCompressedLength(n);
        if (packed.length < max) {
          packed = new byte[max];
        }
        int len = compressor.compress(chunk, chunk.position(), n, ByteBuffer.wrap(packed), 0, max);
        if (len <= n - n / 8) {
          misses = 0;
          out.writeByte(LZ4);
          out.writeInt(len);
          out.write(packed, 0, len);
          compressedChunks++;
          wireBytes += 5 + len;
          return;
        }
        misses++;
      }
    }
    out.writeByte(RAW);
    raw.send();
    rawChunks++;
    wireBytes += 1 + n;
  }

  /**
   * Reads a chunk of {@code chunk.remaining()} original bytes into {@code chunk} (from its
   * position; the position is left as it was). Returns false for a chunk of zeros (then {@code
   * chunk} is not touched and the caller leaves a hole).
   */
  boolean read(DataInputStream in, WireInput wire, ByteBuffer chunk, String where) throws IOException {
    int n = chunk.remaining();
    byte codec = in.readByte();
    switch (codec) {
      case RAW -> wire.readFully(chunk.duplicate());
      case ZERO -> {
        return false;
      }
      case LZ4 -> {
        int len = in.readInt();
        if (len <= 0 || len > compressor.maxCompressedLength(n)) {
          throw new IntegrityException(where + ": bad compressed length " + len);
        }
        ByteBuffer src = compressedBody(in, wire, len, chunk.isDirect());
        try {
          if (decompressor.decompress(src, 0, len, chunk, chunk.position(), n) != n) {
            throw new IntegrityException(where + ": compressed chunk does not decode to " + n + " bytes");
          }
        } catch (LZ4Exception e) {
          throw new IntegrityException(where + ": compressed chunk is corrupt (" + e.getMessage() + ")");
        }
      }
      default -> throw new IntegrityException(where + ": unknown chunk encoding " + codec);
    }
    return true;
  }

  /** Reads a compressed body of {@code len} bytes into a buffer of the same kind as the chunk's. */
  private ByteBuffer compressedBody(DataInputStream in, WireInput wire, int len, boolean direct) throws IOException {
    if (direct) {
      if (packedDirect == null || packedDirect.capacity() < len) {
        packedDirect = ByteBuffer.allocateDirect(compressor.maxCompressedLength(TransferProtocol.CHUNK));
      }
      ByteBuffer b = packedDirect.clear().limit(len);
      wire.readFully(b.duplicate());
      return b;
    }
    if (packed.length < len) {
      packed = new byte[len];
    }
    in.readFully(packed, 0, len);
    return ByteBuffer.wrap(packed, 0, len);
  }

  /** Adds {@code n} zeros to a checksum (which always covers the original bytes). */
  static void zeroUpdate(java.util.zip.CRC32C crc, int n) {
    crc.update(ZEROS, 0, n);
  }
}
