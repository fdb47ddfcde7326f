package dev.ferry.transfer;

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
import java.util.Map;
import java.util.zip.CRC32C;

/** Streams directory trees (a pod's bundles and checkpoint images) to an {@link ImageReceiver}. */
public final class ImageSender {
  private boolean corrupted;
  private final RateLimiter limiter;
  private final RateLimiter hostCap;
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
    this(corruptOneByte, bandwidthBytesPerSecond, compression, null);
  }

  /**
   * @param hostCap a cap shared by every transfer of this host (its link), besides this
   *     transfer's own; null for none
   */
  public ImageSender(boolean corruptOneByte, long bandwidthBytesPerSecond, Compression compression, RateLimiter hostCap) {
    this(corruptOneByte, bandwidthBytesPerSecond > 0 ? new RateLimiter(bandwidthBytesPerSecond) : null, compression, hostCap,
        Lanes.ONE);
  }

  /** One lane of a {@link ParallelSender}: its share of the plan, under caps shared by all lanes. */
  ImageSender(boolean corruptOneByte, RateLimiter limiter, Compression compression, RateLimiter hostCap, Lanes lanes) {
    this.corrupted = !corruptOneByte;
    this.limiter = limiter;
    this.hostCap = hostCap;
    this.compression = compression;
    this.lanes = lanes;
  }

  private final Lanes lanes;

  /** What the last {@link #send} put on the wire: chunk counts by encoding and payload bytes. */
  public record WireStats(long zeroChunks, long compressedChunks, long rawChunks, long wireBytes) {}

  public WireStats wireStats() {
    return codec == null ? new WireStats(0, 0, 0, 0)
        : new WireStats(codec.zeroChunks, codec.compressedChunks, codec.rawChunks, codec.wireBytes);
  }

  /** Size and times of a file when it was sent: unchanged files are not sent again. */
  public record FileStamp(long size, long mtimeNanos, long ctimeNanos) {}

  /** Opens a connection to the receiver: the first one, and new ones to resume a broken transfer. */
  @FunctionalInterface
  public interface Dialer {
    /**
     * @throws TransferAbandoned when no further attempt must be made (the transfer was cancelled)
     */
    java.net.Socket dial() throws IOException;
  }

  /** Thrown by a {@link Dialer} to stop a transfer for good instead of resuming it. */
  public static final class TransferAbandoned extends IOException {
    public TransferAbandoned(String message) {
      super(message);
    }
  }

  /** The receiver said no (and why): resuming would not help. */
  static final class TransferRefused extends IOException {
    TransferRefused(String message) {
      super(message);
    }
  }

  /** The receiver never heard of the transfer (the connection broke before its header arrived). */
  static final class NothingToResume extends IOException {
    NothingToResume(String message) {
      super(message);
    }
  }

  /** Where a resumed transfer goes on, as the receiver verified it. */
  record ResumePoint(int entries, String fileRel, long fileOffset, long bytes, int files) {}

  private int resumes;

  /** How many times the last {@link #send} resumed after its connection broke. */
  public int resumes() {
    return resumes;
  }

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
   * Sends {@code sources} over one connection; with a {@code baseline} (what an earlier transfer
   * of the same migration delivered), only what changed since: files whose size or times
   * differ, and deletions. Returns what the receiver holds now, the baseline of a next round.
   */
  public Map<String, FileStamp> send(String transferId, List<TransferSource> sources, Map<String, FileStamp> baseline,
      OutputStream rawOut, InputStream rawIn, TransferProgress progress) throws IOException {
    codec = new ChunkCodec(compression);
    resumes = 0;
    TransferPlan plan = TransferPlan.of(sources, baseline);
    return attempt(transferId, plan, null, WireOutput.of(rawOut), rawIn, progress);
  }

  /**
   * Sends all {@code sources} over {@code socket}, then waits for the receiver's verdict. Over
   * plain TCP from {@link PeerTls} (a socket with a channel) chunk bodies go from the files to the
   * socket without passing through Java.
   *
   * @throws IOException on a broken connection, or when the receiver refused the data
   */
  public void send(String transferId, List<TransferSource> sources, java.net.Socket socket, TransferProgress progress)
      throws IOException {
    codec = new ChunkCodec(compression);
    resumes = 0;
    attempt(transferId, TransferPlan.of(sources, null), null, WireOutput.of(socket), socket.getInputStream(), progress);
  }

  /**
   * Like {@link #send(String, List, Map, OutputStream, InputStream, TransferProgress)}, over
   * connections from {@code dialer}: when one breaks (not when the receiver refuses), dials
   * again and goes on from the receiver's last verified chunk, for as long as a new connection
   * can be had within {@code resumeWindowMs} of the break.
   */
  public Map<String, FileStamp> send(String transferId, List<TransferSource> sources, Map<String, FileStamp> baseline,
      Dialer dialer, long resumeWindowMs, TransferProgress progress) throws IOException {
    return send(transferId, TransferPlan.of(sources, baseline), dialer, resumeWindowMs, progress);
  }

  /** The resuming send of one plan (a {@link ParallelSender}'s lanes share theirs). */
  Map<String, FileStamp> send(String transferId, TransferPlan plan, Dialer dialer, long resumeWindowMs,
      TransferProgress progress) throws IOException {
    codec = new ChunkCodec(compression);
    resumes = 0;
    boolean resuming = false;
    IOException broke = null;
    long brokeAt = 0;
    while (true) {
      java.net.Socket s;
      try {
        s = dialer.dial();
      } catch (TransferAbandoned e) {
        throw e;
      } catch (IOException e) {
        if (!resuming || System.nanoTime() - brokeAt > resumeWindowMs * 1_000_000) {
          throw resuming ? gaveUp(broke, resumeWindowMs, e) : e;
        }
        pause(200);
        continue;
      }
      long bytesBefore = progress.bytes();
      try (s) {
        ResumePoint at = null;
        if (resuming) {
          at = askWhereToResume(transferId, s.getOutputStream(), s.getInputStream());
          resumes++;
          progress.rewind(at.bytes(), at.files());
          bytesBefore = at.bytes();
        }
        return attempt(transferId, plan, at, WireOutput.of(s), s.getInputStream(), progress);
      } catch (NothingToResume e) {
        // the connection broke before the receiver heard of the transfer: start it over
        resuming = false;
        progress.rewind(0, 0);
        resumes++;
        if (resumes >= MAX_RESUMES) {
          throw new IOException(e.getMessage(), broke);
        }
      } catch (TransferRefused | IntegrityException | TransferAbandoned e) {
        throw e;
      } catch (IOException e) {
        if (broke == null || progress.bytes() > bytesBefore) {
          brokeAt = System.nanoTime(); // a new break, not the same one again: its window starts now
        }
        broke = e;
        resuming = true;
        if (System.nanoTime() - brokeAt > resumeWindowMs * 1_000_000 || resumes >= MAX_RESUMES) {
          throw gaveUp(e, resumeWindowMs, e);
        }
      }
    }
  }

  /** A transfer that keeps breaking (a flapping link) gives up after this many resumes. */
  private static final int MAX_RESUMES = 20;

  private IOException gaveUp(IOException broke, long windowMs, IOException last) {
    String why = broke.getMessage() + (resumes > 0 || last != broke
        ? "; not resumed within " + windowMs + " ms (" + resumes + " resumes; last attempt: " + last.getMessage() + ")"
        : "");
    return new IOException(why, broke);
  }

  private static void pause(long ms) throws java.io.InterruptedIOException {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted while resuming a transfer");
    }
  }

  private static ResumePoint askWhereToResume(String transferId, OutputStream rawOut, InputStream rawIn) throws IOException {
    DataOutputStream out = new DataOutputStream(rawOut);
    out.writeBytes(TransferProtocol.MAGIC);
    out.writeUTF(transferId);
    out.writeByte(TransferProtocol.RESUME);
    out.flush();
    DataInputStream in = new DataInputStream(rawIn);
    byte answer = in.readByte();
    if (answer == TransferProtocol.ERROR) {
      String why = in.readUTF();
      if (why.startsWith(ResumableTransfers.NOTHING_TO_RESUME)) {
        throw new NothingToResume(why);
      }
      throw new TransferRefused("target refused to resume the transfer: " + why);
    }
    if (answer != TransferProtocol.RESUME_AT) {
      throw new TransferRefused("target answered a resume with " + answer);
    }
    return new ResumePoint(in.readInt(), in.readUTF(), in.readLong(), in.readLong(), in.readInt());
  }

  /** One connection's worth: from the start, or from {@code at}. */
  private Map<String, FileStamp> attempt(String transferId, TransferPlan plan, ResumePoint at, WireOutput wire,
      InputStream rawIn, TransferProgress progress) throws IOException {
    DataInputStream in = new DataInputStream(rawIn);
    Map<String, FileStamp> now = plan.now;
    try {
      sendAll(transferId, plan, at, wire, progress);
    } catch (IntegrityException e) {
      throw e;
    } catch (IOException e) {
      // the receiver may have refused (and said why) while we were still sending
      java.util.Optional<String> refused = refusal(in);
      if (refused.isPresent()) {
        throw new TransferRefused(refused.get());
      }
      throw e;
    }
    byte verdict = in.readByte();
    progress.finish();
    if (verdict != TransferProtocol.OK) {
      throw new TransferRefused("target refused the transfer: " + in.readUTF());
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

  private void sendAll(String transferId, TransferPlan plan, ResumePoint at, WireOutput wire, TransferProgress progress)
      throws IOException {
    DataOutputStream out = new DataOutputStream(wire);
    if (at == null) {
      out.writeBytes(TransferProtocol.MAGIC);
      out.writeUTF(transferId);
      out.writeByte(plan.incremental ? TransferProtocol.INCREMENTAL : TransferProtocol.FRESH);
    }
    int index = 0;
    for (int ordinal = 0; ordinal < plan.items.size(); ordinal++) {
      TransferPlan.Item item = plan.items.get(ordinal);
      boolean split = item.kind() == TransferProtocol.FILE && lanes.split(item.size());
      long[] range = split ? lanes.range(item.size()) : null;
      if (split ? range[0] == range[1] : !lanes.carriesWhole(item.kind(), ordinal)) {
        continue; // another lane's
      }
      int i = index++;
      if (at != null && i < at.entries()) {
        continue; // verified by the receiver before the connection broke
      }
      long from = split ? range[0] : 0;
      if (at != null && i == at.entries() && !at.fileRel().isEmpty()) {
        if (!at.fileRel().equals(item.rel())) {
          throw new IntegrityException("cannot resume transfer " + transferId + ": the receiver was writing "
              + at.fileRel() + " but entry " + i + " here is " + item.rel() + " (the files changed since)");
        }
        from = at.fileOffset();
      }
      sendEntry(out, wire, item, range, from, progress);
    }
    if (lanes.lane() == 0) {
      for (String gone : plan.deletions) {
        if (at == null || index++ >= at.entries()) {
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

  private void sendEntry(DataOutputStream out, WireOutput wire, TransferPlan.Item item, long[] range, long from,
      TransferProgress progress) throws IOException {
    Path p = item.path();
    String rel = item.rel();
    int mode = TransferProtocol.mode(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    if (item.kind() == TransferProtocol.SYMLINK) {
      out.writeByte(TransferProtocol.SYMLINK);
      out.writeUTF(rel);
      out.writeInt(mode);
      out.writeUTF(Files.readSymbolicLink(p).toString());
    } else if (item.kind() == TransferProtocol.DIR) {
      out.writeByte(TransferProtocol.DIR);
      out.writeUTF(rel);
      out.writeInt(mode);
    } else {
      out.writeByte(range == null ? TransferProtocol.FILE : TransferProtocol.FILE_RANGE);
      out.writeUTF(rel);
      out.writeInt(mode);
      long start = range == null ? 0 : range[0];
      long end = range == null ? item.size() : range[1];
      sendFile(out, wire, p, item.size(), start, end, from, range != null, progress);
      progress.addFile(start == 0);
    }
  }

  /**
   * One file, or its range {@code [start, end)}, as chunks from {@code from} on. Each chunk is
   * read once into a buffer (direct over a plain channel socket) for its checksum, which also
   * makes the file's ({@link Crc32c#combine}), and its body goes from that same buffer: never by
   * sendfile, which reads the file a second time, so that a file the running pod rewrites
   * meanwhile (a pre-copy round of its root file system) still arrives as the bytes its
   * checksums were made of instead of failing the check.
   */
  private void sendFile(DataOutputStream out, WireOutput wire, Path p, long planned, long start, long end, long from,
      boolean ranged, TransferProgress progress) throws IOException {
    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
      // a file growing meanwhile (a log) is sent as it was; a split one as the plan saw it (all lanes cut it alike)
      long size = ranged ? planned : ch.size();
      if (!ranged) {
        end = size;
      }
      if (from > end || (ranged && ch.size() < end)) {
        throw new IntegrityException("cannot send " + p + (from > start ? " from offset " + from : "") + ": it has only "
            + ch.size() + " bytes now");
      }
      out.writeLong(size);
      if (ranged) {
        out.writeLong(start);
        out.writeLong(end);
      }
      out.writeLong(from);
      int whole = 0; // CRC32C of nothing
      ByteBuffer buf = chunkBuffer(wire.direct());
      long sent = start;
      while (sent < end) {
        int n = (int) Math.min(buf.capacity(), end - sent);
        readChunk(ch, buf, sent, n, p);
        int crc = Crc32c.of(buf);
        whole = Crc32c.combine(whole, crc, n);
        if (sent < from) {
          sent += n; // verified by the receiver already: only its checksum is needed here
          continue;
        }
        if (!corrupted) {
          buf.put(n / 2, (byte) (buf.get(n / 2) ^ 0x5a)); // after the checksum: the receiver must notice
          corrupted = true; // the file itself stays as it is
        }
        long before = codec.wireBytes;
        out.writeInt(n);
        codec.write(out, buf, () -> wire.write(buf.duplicate()));
        out.writeInt(crc);
        long wireBytes = codec.wireBytes - before; // the caps are on the link: what goes on the wire
        if (limiter != null) {
          limiter.acquire(wireBytes);
        }
        if (hostCap != null) {
          hostCap.acquire(wireBytes);
        }
        sent += n;
        progress.addBytes(n);
      }
      out.writeInt(0);
      out.writeInt(whole);
    }
  }

  /** One per sender and kind: direct where the kernel reads it and writes it to a channel, heap for streams. */
  private ByteBuffer chunkBuffer(boolean direct) {
    ByteBuffer b = direct ? directChunk : heapChunk;
    if (b == null) {
      b = direct ? ByteBuffer.allocateDirect(TransferProtocol.CHUNK) : ByteBuffer.allocate(TransferProtocol.CHUNK);
      if (direct) {
        directChunk = b;
      } else {
        heapChunk = b;
      }
    }
    return b;
  }

  private ByteBuffer directChunk;
  private ByteBuffer heapChunk;

  /** Reads {@code n} bytes at {@code offset} into {@code buf}, leaving them as its remaining bytes. */
  private static void readChunk(FileChannel ch, ByteBuffer buf, long offset, int n, Path p) throws IOException {
    buf.clear().limit(n);
    while (buf.hasRemaining()) {
      if (ch.read(buf, offset + buf.position()) <= 0) {
        throw new IOException(p + " shrank while being sent");
      }
    }
    buf.flip();
  }
}
