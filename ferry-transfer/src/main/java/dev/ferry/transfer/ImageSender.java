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
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import java.util.zip.CRC32C;

/** Streams directory trees (a pod's bundles and checkpoint images) to an {@link ImageReceiver}. */
public final class ImageSender {
  private final boolean corruptOneByte;
  private final RateLimiter limiter;
  private final Compression compression;
  private ChunkCodec codec;

  /**
   * @param corruptOneByte fault injection for tests: flip one byte of the first file after its
   *     checksum was taken, as a bad link or disk would
   */
  public ImageSender(boolean corruptOneByte) {
    this(corruptOneByte, 0);
  }

  /**
   * @param bandwidthBytesPerSecond cap on the payload rate; 0 for none
   */
  public ImageSender(boolean corruptOneByte, long bandwidthBytesPerSecond) {
    this(corruptOneByte, bandwidthBytesPerSecond, Compression.AUTO);
  }

  /**
   * @param compression how chunks are encoded on the wire
   */
  public ImageSender(boolean corruptOneByte, long bandwidthBytesPerSecond, Compression compression) {
    this.corruptOneByte = corruptOneByte;
    this.limiter = bandwidthBytesPerSecond > 0 ? new RateLimiter(bandwidthBytesPerSecond) : null;
    this.compression = compression;
  }

  /** What the last {@link #send} put on the wire: chunk counts by encoding and payload bytes. */
  public record WireStats(long zeroChunks, long compressedChunks, long rawChunks, long wireBytes) {}

  public WireStats wireStats() {
    return codec == null ? new WireStats(0, 0, 0, 0)
        : new WireStats(codec.zeroChunks, codec.compressedChunks, codec.rawChunks, codec.wireBytes);
  }

  /** Size and times of a file when it was sent: unchanged files are not sent again. */
  public record FileStamp(long size, long mtimeNanos, long ctimeNanos) {}

  /**
   * Sends all {@code sources}, then waits for the receiver's verdict.
   *
   * @throws IOException on a broken connection, or when the receiver refused the data
   */
  public void send(String transferId, List<TransferSource> sources, OutputStream rawOut, InputStream rawIn, TransferProgress progress)
      throws IOException {
    send(transferId, sources, null, rawOut, rawIn, progress);
  }

  /**
   * Sends {@code sources}; with a {@code baseline} (what an earlier transfer of the same
   * migration delivered), only what changed since: files whose size or times differ, and
   * deletions. Returns what the receiver holds now, the baseline of a next round.
   */
  public Map<String, FileStamp> send(String transferId, List<TransferSource> sources, Map<String, FileStamp> baseline,
      OutputStream rawOut, InputStream rawIn, TransferProgress progress) throws IOException {
    DataInputStream in = new DataInputStream(rawIn);
    Map<String, FileStamp> now = new HashMap<>();
    try {
      sendAll(transferId, sources, baseline, now, rawOut, progress);
    } catch (IOException e) {
      // the receiver may have refused (and said why) while we were still sending
      throw new IOException(refusal(in).orElse(e.getMessage()), e);
    }
    byte verdict = in.readByte();
    progress.finish();
    if (verdict != TransferProtocol.OK) {
      throw new IOException("target refused the transfer: " + in.readUTF());
    }
    return now;
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

  private void sendAll(String transferId, List<TransferSource> sources, Map<String, FileStamp> baseline,
      Map<String, FileStamp> now, OutputStream rawOut, TransferProgress progress) throws IOException {
    DataOutputStream out = new DataOutputStream(new BufferedOutputStream(rawOut, 1 << 16));
    codec = new ChunkCodec(compression);
    out.writeBytes(TransferProtocol.MAGIC);
    out.writeUTF(transferId);
    out.writeBoolean(baseline != null);
    boolean[] corrupted = {!corruptOneByte};
    for (TransferSource src : sources) {
      try (Stream<Path> walk = Files.walk(src.dir())) {
        for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
          String rel = src.as() + (p.equals(src.dir()) ? "" : "/" + src.dir().relativize(p));
          if (!p.equals(src.dir()) && src.skip().contains(src.dir().relativize(p).toString())) {
            continue;
          }
          if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            FileStamp stamp = stamp(p);
            now.put(rel, stamp);
            if (baseline != null && stamp.equals(baseline.get(rel))) {
              continue; // the receiver has this very file from an earlier round
            }
          }
          sendEntry(out, p, rel, progress, corrupted);
        }
      }
    }
    if (baseline != null) {
      for (String gone : baseline.keySet()) {
        if (!now.containsKey(gone)) {
          out.writeByte(TransferProtocol.DELETE);
          out.writeUTF(gone);
          out.writeInt(0);
        }
      }
    }
    out.writeByte(TransferProtocol.END);
    out.writeLong(progress.bytes());
    out.writeInt((int) progress.files());
    out.flush();
  }

  private static FileStamp stamp(Path p) throws IOException {
    Map<String, Object> a = Files.readAttributes(p, "unix:size,lastModifiedTime,ctime", LinkOption.NOFOLLOW_LINKS);
    return new FileStamp((Long) a.get("size"), ((FileTime) a.get("lastModifiedTime")).to(TimeUnit.NANOSECONDS),
        ((FileTime) a.get("ctime")).to(TimeUnit.NANOSECONDS));
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
        buf.limit((int) Math.min(buf.capacity(), size - sent)); // a file growing meanwhile (a log) is sent as it was
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
        long before = codec.wireBytes;
        out.writeInt(n);
        codec.write(out, buf.array(), n);
        out.writeInt((int) crc.getValue());
        if (limiter != null) {
          limiter.acquire(codec.wireBytes - before); // the cap is on the link: what goes on the wire
        }
        sent += n;
        progress.addBytes(n);
      }
      out.writeInt(0);
      out.writeInt((int) whole.getValue());
    }
  }
}
