package dev.ferry.transfer;

import java.io.BufferedInputStream;
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

/** Receives what an {@link ImageSender} sends into a directory, verifying every chunk. */
public final class ImageReceiver {
  private final java.util.function.BiFunction<String, Boolean, Path> rootFor;
  private Path root;

  /**
   * @param rootFor maps the transfer id the sender announces, and whether it adds to an earlier
   *     round (true) or starts afresh (false), to the directory its files land under; throws
   *     (e.g. IllegalStateException) to refuse a transfer nobody expects
   */
  public ImageReceiver(java.util.function.BiFunction<String, Boolean, Path> rootFor) {
    this.rootFor = rootFor;
  }

  /**
   * Reads one transfer. On success answers OK and returns the transfer id; on any mismatch
   * answers ERROR with the reason and throws, leaving partial files for the caller to delete.
   *
   * @param onBytes called with the running byte count (progress, fault injection)
   */
  public String receive(InputStream rawIn, OutputStream rawOut, TransferProgress progress, LongConsumer onBytes)
      throws IOException {
    DataInputStream in = new DataInputStream(new BufferedInputStream(rawIn, 1 << 16));
    ChunkCodec codec = new ChunkCodec(Compression.AUTO); // one per stream, like the sender's
    byte[] buf = new byte[TransferProtocol.CHUNK]; // one per stream, not per file
    DataOutputStream out = new DataOutputStream(rawOut);
    try {
      byte[] magic = in.readNBytes(TransferProtocol.MAGIC.length());
      if (!TransferProtocol.MAGIC.equals(new String(magic, StandardCharsets.US_ASCII))) {
        throw new IOException("not a Ferry transfer (bad magic)");
      }
      String id = in.readUTF();
      boolean incremental = in.readBoolean();
      root = rootFor.apply(id, incremental).toAbsolutePath().normalize();
      Files.createDirectories(root);
      while (true) {
        byte kind = in.readByte();
        if (kind == TransferProtocol.END) {
          long total = in.readLong();
          int files = in.readInt();
          if (total != progress.bytes() || files != progress.files()) {
            throw new IntegrityException("transfer ended short: got " + progress.bytes() + " bytes in " + progress.files()
                + " files, sender sent " + total + " bytes in " + files);
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
            receiveFile(in, codec, buf, target, rel, progress, onBytes);
            Files.setPosixFilePermissions(target, TransferProtocol.perms(mode));
            progress.addFile();
          }
          case TransferProtocol.DELETE -> deleteTree(target);
          default -> throw new IOException("unknown entry kind " + kind + " at " + rel);
        }
      }
      progress.finish();
      out.writeByte(TransferProtocol.OK);
      out.flush();
      return id;
    } catch (IOException | RuntimeException e) {
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
      TransferProgress progress, LongConsumer onBytes) throws IOException {
    long size = in.readLong();
    Files.createDirectories(target.getParent());
    CRC32C whole = new CRC32C();
    long offset = 0;
    try (FileChannel ch = FileChannel.open(target, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
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
          whole.update(buf, 0, n);
          ByteBuffer b = ByteBuffer.wrap(buf, 0, n);
          while (b.hasRemaining()) {
            ch.write(b, offset + b.position());
          }
        } else {
          ChunkCodec.zeroUpdate(whole, n); // left as a hole: reads as zeros, takes no space
        }
        offset += n;
        progress.addBytes(n);
        onBytes.accept(progress.bytes());
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
