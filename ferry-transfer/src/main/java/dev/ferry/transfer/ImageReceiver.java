package dev.ferry.transfer;

import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.LongConsumer;

/**
 * Receives what an {@link ImageSender} sends into a directory, verifying every chunk. A
 * connection that breaks leaves what was verified with the {@link ResumableTransfers} the
 * receiver was given, for the sender to resume.
 */
public final class ImageReceiver {
  private final java.util.function.BiFunction<String, Boolean, Path> rootFor;
  private final ResumableTransfers resumable;
  private Path root;

  /**
   * @param rootFor maps the transfer id the sender announces, and whether it adds to an earlier
   *     round or resumes (true) or starts afresh (false), to the directory its files land under;
   *     throws (e.g. IllegalStateException) to refuse a transfer nobody expects
   */
  public ImageReceiver(java.util.function.BiFunction<String, Boolean, Path> rootFor) {
    this(rootFor, new ResumableTransfers());
  }

  /** @param resumable what this agent's receivers verified so far, shared between connections */
  public ImageReceiver(java.util.function.BiFunction<String, Boolean, Path> rootFor, ResumableTransfers resumable) {
    this.rootFor = rootFor;
    this.resumable = resumable;
  }

  /** {@link #receive(InputStream, OutputStream, Closeable, TransferProgress, LongConsumer)} for a connection nobody resumes. */
  public String receive(InputStream rawIn, OutputStream rawOut, TransferProgress progress, LongConsumer onBytes)
      throws IOException {
    return receive(rawIn, rawOut, null, progress, onBytes);
  }

  /**
   * Reads one transfer (or the rest of one). On success answers OK and returns the transfer id;
   * on any mismatch answers ERROR with the reason and throws, leaving partial files for the
   * caller to delete. When the connection breaks, throws and keeps what was verified for a
   * resume.
   *
   * @param connection closed when another connection resumes this transfer (the old one may be
   *     blocked on a cut link); may be null
   * @param progress bytes and files this connection received
   * @param onBytes called with the transfer's running byte count (progress, fault injection)
   */
  public String receive(InputStream rawIn, OutputStream rawOut, Closeable connection, TransferProgress progress,
      LongConsumer onBytes) throws IOException {
    return receive(WireInput.of(rawIn), rawOut, connection, progress, onBytes);
  }

  /**
   * {@link #receive(InputStream, OutputStream, Closeable, TransferProgress, LongConsumer)} from a
   * socket: over plain TCP from {@link PeerTls} (a socket with a channel) chunk bodies go from the
   * socket into a direct buffer and from there to the file, without a copy on Java's heap. A read
   * that waits longer than the socket's SO_TIMEOUT fails, as a stream read would.
   *
   * @param alreadyRead what the caller read from the socket already (to tell what it carries)
   */
  public String receive(java.net.Socket socket, byte[] alreadyRead, Closeable connection, TransferProgress progress,
      LongConsumer onBytes) throws IOException {
    try (WireInput in = WireInput.of(socket, alreadyRead)) {
      return receive(in, socket.getOutputStream(), connection, progress, onBytes);
    }
  }

  private String receive(WireInput wire, OutputStream rawOut, Closeable connection, TransferProgress progress,
      LongConsumer onBytes) throws IOException {
    DataInputStream in = new DataInputStream(wire);
    ChunkCodec codec = new ChunkCodec(Compression.AUTO); // one per stream, like the sender's
    // one per stream, not per file; its buffers are direct when the socket reads into them without a copy on the heap
    ChunkWriter writer = new ChunkWriter(wire.prefersDirect());
    DataOutputStream out = new DataOutputStream(rawOut);
    ResumableTransfers.Partial p = null;
    try {
      byte[] magic = in.readNBytes(TransferProtocol.MAGIC.length());
      if (!TransferProtocol.MAGIC.equals(new String(magic, StandardCharsets.US_ASCII))) {
        throw new IOException("not a Ferry transfer (bad magic)");
      }
      String id = in.readUTF();
      byte start = in.readByte();
      if (start == TransferProtocol.RESUME) {
        p = resumable.resume(id, connection);
        root = rootFor.apply(id, true).toAbsolutePath().normalize(); // still expected?
        out.writeByte(TransferProtocol.RESUME_AT);
        out.writeInt(p.entries);
        out.writeUTF(p.fileRel == null ? "" : p.fileRel);
        out.writeLong(p.fileOffset);
        out.writeLong(p.progress.bytes());
        out.writeInt((int) p.progress.files());
        out.flush();
      } else {
        root = rootFor.apply(id, start == TransferProtocol.INCREMENTAL).toAbsolutePath().normalize();
        p = resumable.start(id, root, connection);
      }
      Files.createDirectories(root);
      while (true) {
        byte kind = in.readByte();
        if (kind == TransferProtocol.END) {
          long total = in.readLong();
          int files = in.readInt();
          if (total != p.progress.bytes() || files != p.progress.files()) {
            throw new IntegrityException("transfer ended short: got " + p.progress.bytes() + " bytes in "
                + p.progress.files() + " files, sender sent " + total + " bytes in " + files);
          }
          break;
        }
        String rel = in.readUTF();
        Path target = safeResolve(rel);
        int mode = in.readInt();
        switch (kind) {
          case TransferProtocol.DIR -> {
            Files.createDirectories(target);
            Files.setPosixFilePermissions(target, TransferProtocol.perms(mode));
          }
          case TransferProtocol.SYMLINK -> {
            String link = in.readUTF();
            Files.createDirectories(target.getParent());
            Files.deleteIfExists(target);
            Files.createSymbolicLink(target, Path.of(link));
          }
          case TransferProtocol.FILE -> {
            receiveFile(in, wire, codec, writer, target, rel, p, progress, onBytes);
            Files.setPosixFilePermissions(target, TransferProtocol.perms(mode));
            p.progress.addFile();
            progress.addFile();
          }
          case TransferProtocol.FILE_RANGE -> {
            boolean first = receiveRange(in, wire, codec, writer, target, rel, p, progress, onBytes);
            Files.setPosixFilePermissions(target, TransferProtocol.perms(mode));
            p.progress.addFile();
            if (first) {
              progress.addFile();
            }
          }
          case TransferProtocol.DELETE -> deleteTree(target);
          default -> throw new IOException("unknown entry kind " + kind + " at " + rel);
        }
        p.entries++;
      }
      writer.close();
      progress.finish();
      out.writeByte(TransferProtocol.OK);
      out.flush();
      resumable.release(p); // a sender that missed the OK resumes, sends END again and gets it
      return id;
    } catch (IOException | RuntimeException e) {
      writer.close(); // what it wrote is verified and counted; nothing more changes p
      if (p != null && wire.broken() && !(e instanceof IntegrityException)) {
        resumable.release(p); // the connection broke: no refusal, what was verified is kept
        throw e;
      }
      if (p != null) {
        resumable.drop(p);
      }
      try {
        out.writeByte(TransferProtocol.ERROR);
        out.writeUTF(String.valueOf(e.getMessage()));
        out.flush();
        // read (and drop) what the sender still sends: closing with unread data would reset
        // the connection and the sender would never read why we refused
        in.transferTo(OutputStream.nullOutputStream());
      } catch (IOException ignored) {
        // the sender is gone; the caller reports the first error
      }
      throw e;
    } finally {
      writer.close();
    }
  }

  private void receiveFile(DataInputStream in, WireInput wire, ChunkCodec codec, ChunkWriter writer, Path target, String rel,
      ResumableTransfers.Partial p, TransferProgress progress, LongConsumer onBytes) throws IOException {
    long size = in.readLong();
    long startOffset = in.readLong();
    if (startOffset != 0 && (!rel.equals(p.fileRel) || startOffset != p.fileOffset)) {
      throw new IntegrityException("cannot resume " + rel + " at offset " + startOffset + ": verified here is "
          + (p.fileRel == null ? "no partial file" : p.fileRel + " up to offset " + p.fileOffset));
    }
    if (startOffset == 0) {
      p.fileRel = rel;
      p.fileOffset = 0;
      p.fileCrc = 0; // CRC32C of nothing
    }
    Files.createDirectories(target.getParent());
    long offset = startOffset;
    var opts = startOffset == 0
        ? new StandardOpenOption[] {StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING}
        : new StandardOpenOption[] {StandardOpenOption.WRITE};
    try (FileChannel ch = FileChannel.open(target, opts)) {
      try {
        offset = receiveChunks(in, wire, codec, writer, ch, rel, offset, size, false, p, progress, onBytes);
        writer.drain();
      } finally {
        writer.settle(); // no write may go on into a closed file
      }
      if (ch.size() < offset) {
        ch.write(ByteBuffer.allocate(1), offset - 1); // the file ends in a hole: give it its length
      }
    }
    int expectedWhole = in.readInt();
    if (offset != size) {
      throw new IntegrityException(rel + ": got " + offset + " bytes, expected " + size);
    }
    if (p.fileCrc != expectedWhole) {
      throw new IntegrityException("checksum mismatch for the whole of " + rel);
    }
    p.fileRel = null;
    p.fileOffset = 0;
  }

  /**
   * One range of a file that several connections carry (see {@link Lanes}): written in place into
   * the file, which is created if missing and never truncated below its size (other ranges are
   * being written meanwhile); the lane of the last range gives the file its length. Checked like a
   * whole file: every chunk, then the range's checksum. Returns whether the range is the file's
   * first (the file counts once).
   */
  private boolean receiveRange(DataInputStream in, WireInput wire, ChunkCodec codec, ChunkWriter writer, Path target,
      String rel, ResumableTransfers.Partial p, TransferProgress progress, LongConsumer onBytes) throws IOException {
    long size = in.readLong();
    long start = in.readLong();
    long end = in.readLong();
    long startOffset = in.readLong();
    if (start < 0 || start >= end || end > size || startOffset < start || startOffset > end) {
      throw new IntegrityException(rel + ": bad range [" + start + ", " + end + ") of " + size + " bytes from " + startOffset);
    }
    if (startOffset != start && (!rel.equals(p.fileRel) || startOffset != p.fileOffset)) {
      throw new IntegrityException("cannot resume " + rel + " at offset " + startOffset + ": verified here is "
          + (p.fileRel == null ? "no partial file" : p.fileRel + " up to offset " + p.fileOffset));
    }
    if (startOffset == start) {
      p.fileRel = rel;
      p.fileOffset = start;
      p.fileCrc = 0; // CRC32C of nothing
    }
    Files.createDirectories(target.getParent());
    long offset = startOffset;
    try (FileChannel ch = FileChannel.open(target, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
      if (end == size && ch.size() > size) {
        ch.truncate(size); // an earlier round's longer file; no range goes beyond size
      }
      try {
        offset = receiveChunks(in, wire, codec, writer, ch, rel, offset, end, true, p, progress, onBytes);
        writer.drain();
      } finally {
        writer.settle();
      }
      if (end == size && ch.size() < size) {
        ch.write(ByteBuffer.allocate(1), size - 1); // the file ends in a hole, in this range: give it its length
      }
    }
    int expected = in.readInt();
    if (offset != end) {
      throw new IntegrityException(rel + ": got its range up to " + offset + ", expected [" + start + ", " + end + ")");
    }
    if (p.fileCrc != expected) {
      throw new IntegrityException("checksum mismatch for " + rel + " in [" + start + ", " + end + ")");
    }
    p.fileRel = null;
    p.fileOffset = 0;
    return start == 0;
  }

  /**
   * Reads, verifies and hands to {@code writer} the chunks of one file, up to its end marker;
   * returns the offset after the last. Each chunk counts as received (and a resume goes on after
   * it) once the writer has written it.
   */
  private static long receiveChunks(DataInputStream in, WireInput wire, ChunkCodec codec, ChunkWriter writer,
      FileChannel ch, String rel, long offset, long limit, boolean shared, ResumableTransfers.Partial p,
      TransferProgress progress, LongConsumer onBytes) throws IOException {
    while (true) {
      int n = in.readInt();
      if (n == 0) {
        return offset;
      }
      if (n < 0 || n > TransferProtocol.CHUNK || offset + n > limit) {
        throw new IntegrityException(rel + ": bad chunk length " + n + " at offset " + offset);
      }
      ByteBuffer buf = writer.buffer().limit(n);
      boolean data;
      int crc;
      try {
        data = codec.read(in, wire, buf, rel + " at offset " + offset);
        int expected = in.readInt();
        crc = data ? Crc32c.of(buf) : zeroCrc(n);
        if (crc != expected) {
          throw new IntegrityException("checksum mismatch in " + rel + " at offset " + offset + " (chunk of " + n + " bytes)");
        }
      } catch (IOException | RuntimeException e) {
        writer.giveBack(buf);
        throw e;
      }
      if (!data && shared && offset < ch.size()) {
        // a file other connections write too is never truncated: what lies here may be an
        // earlier round's bytes (or a hole another range made), so the zeros are written
        data = true;
        buf.put(ZERO_CHUNK.duplicate().limit(n)).flip();
      }
      if (!data) {
        writer.giveBack(buf); // a hole: nothing to write, reads as zeros and takes no space
      }
      long end = offset + n;
      writer.write(ch, data ? buf : null, offset, () -> {
        // written and verified: from here a resume goes on after this chunk
        p.fileCrc = Crc32c.combine(p.fileCrc, crc, n);
        p.fileOffset = end;
        p.progress.addBytes(n);
        progress.addBytes(n);
        onBytes.accept(p.progress.bytes());
      });
      offset = end;
    }
  }

  private static final ByteBuffer ZERO_CHUNK = ByteBuffer.allocateDirect(TransferProtocol.CHUNK).asReadOnlyBuffer();
  private static final int FULL_ZERO_CHUNK_CRC = Crc32c.ofZeros(TransferProtocol.CHUNK);

  private static int zeroCrc(int n) {
    return n == TransferProtocol.CHUNK ? FULL_ZERO_CHUNK_CRC : Crc32c.ofZeros(n);
  }

  private static void deleteTree(Path p) throws IOException {
    if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      try (var children = Files.list(p)) {
        for (Path c : (Iterable<Path>) children::iterator) {
          deleteTree(c);
        }
      }
    }
    Files.deleteIfExists(p);
  }

  /** Refuses absolute paths and "..": a peer must not write outside the transfer's root. */
  private Path safeResolve(String rel) throws IOException {
    Path p = root.resolve(rel).normalize();
    if (rel.startsWith("/") || !p.startsWith(root)) {
      throw new IOException("refusing path outside the transfer directory: " + rel);
    }
    return p;
  }
}
