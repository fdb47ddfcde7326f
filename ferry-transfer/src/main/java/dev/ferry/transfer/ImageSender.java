package dev.ferry.transfer;

import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/** Streams directory trees (a pod's bundles and checkpoint images) to an {@link ImageReceiver}. */
public final class ImageSender {
  private final boolean corruptOneByte;

  /**
   * @param corruptOneByte fault injection for tests: flip one byte of the first file after its
   *     checksum was taken, as a bad link or disk would
   */
  public ImageSender(boolean corruptOneByte) {
    this.corruptOneByte = corruptOneByte;
  }

  /**
   * Sends all {@code sources}, then waits for the receiver's verdict.
   *
   * @throws IOException on a broken connection, or when the receiver refused the data
   */
  public void send(String transferId, List<TransferSource> sources, OutputStream rawOut, InputStream rawIn, TransferProgress progress)
      throws IOException {
    DataInputStream in = new DataInputStream(rawIn);
    try {
      sendAll(transferId, sources, rawOut, progress);
    } catch (IOException e) {
      // the receiver may have refused (and said why) while we were still sending
      throw new IOException(refusal(in).orElse(e.getMessage()), e);
    }
    byte verdict = in.readByte();
    progress.finish();
    if (verdict != TransferProtocol.OK) {
      throw new IOException("target refused the transfer: " + in.readUTF());
    }
  }

  private static java.util.Optional<String> refusal(DataInputStream in) {
    try {
      if (in.readByte() == TransferProtocol.ERROR) {
        return java.util.Optional.of("target refused the transfer: " + in.readUTF());
      }
    } catch (IOException ignored) {
      // nothing said: the connection just broke
    }
    return java.util.Optional.empty();
  }

  private void sendAll(String transferId, List<TransferSource> sources, OutputStream rawOut, TransferProgress progress)
      throws IOException {
    DataOutputStream out = new DataOutputStream(new BufferedOutputStream(rawOut, 1 << 16));
    out.writeBytes(TransferProtocol.MAGIC);
    out.writeUTF(transferId);
    boolean[] corrupted = {!corruptOneByte};
    for (TransferSource src : sources) {
      try (Stream<Path> walk = Files.walk(src.dir())) {
        for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
          String rel = src.as() + (p.equals(src.dir()) ? "" : "/" + src.dir().relativize(p));
          sendEntry(out, p, rel, progress, corrupted);
        }
      }
    }
    out.writeByte(TransferProtocol.END);
    out.writeLong(progress.bytes());
    out.writeInt((int) progress.files());
    out.flush();
  }

  private void sendEntry(DataOutputStream out, Path p, String rel, TransferProgress progress, boolean[] corrupted)
      throws IOException {
    int mode = TransferProtocol.mode(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    if (Files.isSymbolicLink(p)) {
      out.writeByte(TransferProtocol.SYMLINK);
      out.writeUTF(rel);
      out.writeInt(mode);
      out.writeUTF(Files.readSymbolicLink(p).toString());
    } else if (Files.isDirectory(p)) {
      out.writeByte(TransferProtocol.DIR);
      out.writeUTF(rel);
      out.writeInt(mode);
    } else if (Files.isRegularFile(p)) {
      out.writeByte(TransferProtocol.FILE);
      out.writeUTF(rel);
      out.writeInt(mode);
      sendFile(out, p, progress, corrupted);
      progress.addFile();
    }
    // sockets, fifos and devices are never part of a bundle or an image directory
  }

  private void sendFile(DataOutputStream out, Path p, TransferProgress progress, boolean[] corrupted) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
      long size = ch.size();
      out.writeLong(size);
      CRC32C whole = new CRC32C();
      ByteBuffer buf = ByteBuffer.allocate(TransferProtocol.CHUNK);
      long sent = 0;
      while (sent < size) {
        buf.clear();
        int n = ch.read(buf);
        if (n <= 0) {
          throw new IOException(p + " shrank while being sent");
        }
        CRC32C crc = new CRC32C();
        crc.update(buf.array(), 0, n);
        whole.update(buf.array(), 0, n);
        if (!corrupted[0] && n > 0) {
          buf.array()[n / 2] ^= 0x5a; // after the checksum: the receiver must notice
          corrupted[0] = true;
        }
        out.writeInt(n);
        out.write(buf.array(), 0, n);
        out.writeInt((int) crc.getValue());
        sent += n;
        progress.addBytes(n);
      }
      out.writeInt(0);
      out.writeInt((int) whole.getValue());
    }
  }
}
