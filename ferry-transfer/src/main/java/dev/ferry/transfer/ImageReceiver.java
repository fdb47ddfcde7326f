package dev.ferry.transfer;

import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.FilterInputStream;
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
import java.util.zip.CRC32C;

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
    BreakWatch watched = new BreakWatch(rawIn);
    DataInputStream in = new DataInputStream(new BufferedInputStream(watched, 1 << 16));
    ChunkCodec codec = new ChunkCodec(Compression.AUTO); // one per stream, like the sender's
    byte[] buf = new byte[TransferProtocol.CHUNK]; // one per stream, not per file
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
            receiveFile(in, codec, buf, target, rel, p, progress, onBytes);
            Files.setPosixFilePermissions(target, TransferProtocol.perms(mode));
            p.progress.addFile();
            progress.addFile();
          }
          case TransferProtocol.DELETE -> deleteTree(target);
          default -> throw new IOException("unknown entry kind " + kind + " at " + rel);
        }
        p.entries++;
      }
      progress.finish();
      out.writeByte(TransferProtocol.OK);
      out.flush();
      resumable.release(p); // a sender that missed the OK resumes, sends END again and gets it
      return id;
    } catch (IOException | RuntimeException e) {
      if (p != null && watched.broken && !(e instanceof IntegrityException)) {
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
    }
  }

  private void receiveFile(DataInputStream in, ChunkCodec codec, byte[] buf, Path target, String rel,
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
      p.fileCrc = new CRC32C();
    }
    Files.createDirectories(target.getParent());
    CRC32C whole = p.fileCrc;
    long offset = startOffset;
    var opts = startOffset == 0
        ? new StandardOpenOption[] {StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING}
        : new StandardOpenOption[] {StandardOpenOption.WRITE};
    try (FileChannel ch = FileChannel.open(target, opts)) {
      while (true) {
        int n = in.readInt();
        if (n == 0) {
          break;
        }
        if (n < 0 || n > TransferProtocol.CHUNK) {
          throw new IntegrityException(rel + ": bad chunk length " + n + " at offset " + offset);
        }
        boolean data = codec.read(in, buf, n, rel + " at offset " + offset);
        int expected = in.readInt();
        CRC32C crc = new CRC32C();
        if (data) {
          crc.update(buf, 0, n);
        } else {
          ChunkCodec.zeroUpdate(crc, n);
        }
        if ((int) crc.getValue() != expected) {
          throw new IntegrityException("checksum mismatch in " + rel + " at offset " + offset + " (chunk of " + n + " bytes)");
        }
        if (data) {
          ByteBuffer b = ByteBuffer.wrap(buf, 0, n);
          while (b.hasRemaining()) {
            ch.write(b, offset + b.position());
          }
          whole.update(buf, 0, n);
        } else {
          ChunkCodec.zeroUpdate(whole, n); // left as a hole: reads as zeros, takes no space
        }
        // written and verified: from here a resume goes on after this chunk
        offset += n;
        p.fileOffset = offset;
        p.progress.addBytes(n);
        progress.addBytes(n);
        onBytes.accept(p.progress.bytes());
      }
      if (ch.size() < offset) {
        ch.write(ByteBuffer.allocate(1), offset - 1); // the file ends in a hole: give it its length
      }
    }
    int expectedWhole = in.readInt();
    if (offset != size) {
      throw new IntegrityException(rel + ": got " + offset + " bytes, expected " + size);
    }
    if ((int) whole.getValue() != expectedWhole) {
      throw new IntegrityException("checksum mismatch for the whole of " + rel);
    }
    p.fileRel = null;
    p.fileOffset = 0;
  }

  /** Notes whether the connection itself failed (end of stream or an I/O error), as opposed to what it carried. */
  private static final class BreakWatch extends FilterInputStream {
    volatile boolean broken;

    BreakWatch(InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      try {
        int b = super.read();
        broken |= b < 0;
        return b;
      } catch (IOException e) {
        broken = true;
        throw e;
      }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      try {
        int n = super.read(b, off, len);
        broken |= n < 0;
        return n;
      } catch (IOException e) {
        broken = true;
        throw e;
      }
    }
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
