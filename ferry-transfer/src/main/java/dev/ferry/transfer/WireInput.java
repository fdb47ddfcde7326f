package dev.ferry.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;

/**
 * The receiving end of a transfer connection. Small fields are read through a buffer; chunk
 * bodies ({@link #readFully(ByteBuffer)}) go from the socket straight into the caller's buffer,
 * which over a plain socket with a channel is a direct one: one copy, kernel to the buffer the
 * file is written from. Notes whether the connection itself failed ({@link #broken()}: end of
 * stream or an I/O error) as opposed to what it carried.
 *
 * <p>A plain channel read does not honour the socket's SO_TIMEOUT; an {@link IoDeadline} closes a
 * channel whose read has waited longer than it, and the read then fails with {@link
 * SocketTimeoutException} as a stream read would. A {@link TlsChannel} keeps the socket's timeout
 * itself.
 */
final class WireInput extends InputStream {
  private static final int BUFFER = 1 << 16;
  /** null when reading from {@link #stream}. */
  private final ReadableByteChannel channel;
  private final InputStream stream;
  /** Read mode: what was read from the connection and not yet taken. */
  private final ByteBuffer buf;
  private final long timeoutNanos;
  private final IoDeadline deadline;
  private volatile boolean broken;
  private byte[] scratch;

  private WireInput(ReadableByteChannel channel, InputStream stream, byte[] alreadyRead, int timeoutMs) {
    this.channel = channel;
    this.stream = stream;
    this.buf = channel != null ? ByteBuffer.allocateDirect(BUFFER) : ByteBuffer.allocate(BUFFER);
    buf.put(alreadyRead).flip();
    this.timeoutNanos = TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    this.deadline = new IoDeadline(this::closeChannel);
  }

  /**
   * Reads from {@code s}'s channel when it has one in blocking mode (plain TCP from {@link
   * PeerTls}) or from its {@link TlsChannel} (TLS through BoringSSL), else from its stream;
   * {@code alreadyRead} comes first (what the caller read to tell what the connection carries).
   * Channel reads time out after the socket's SO_TIMEOUT.
   */
  static WireInput of(Socket s, byte[] alreadyRead) throws IOException {
    if (s instanceof TlsSocket tls) {
      return new WireInput(tls.channel(), null, alreadyRead, 0); // the TLS channel times its own reads
    }
    SocketChannel ch = s.getChannel();
    if (ch != null && ch.isBlocking()) {
      return new WireInput(ch, null, alreadyRead, s.getSoTimeout());
    }
    return new WireInput(null, s.getInputStream(), alreadyRead, 0);
  }

  static WireInput of(InputStream in) {
    return new WireInput(null, in, new byte[0], 0);
  }

  /** True when chunk bodies are best read into direct buffers. */
  boolean prefersDirect() {
    return channel != null;
  }

  /** The connection ended or failed (rather than carrying something wrong). */
  boolean broken() {
    return broken;
  }

  @Override
  public int read() throws IOException {
    if (!buf.hasRemaining() && fill() < 0) {
      return -1;
    }
    return buf.get() & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    if (!buf.hasRemaining() && fill() < 0) {
      return -1;
    }
    int n = Math.min(len, buf.remaining());
    buf.get(b, off, n);
    return n;
  }

  /** Fills {@code dst}'s remaining space from the connection. */
  void readFully(ByteBuffer dst) throws IOException {
    if (buf.hasRemaining()) {
      int n = Math.min(dst.remaining(), buf.remaining());
      dst.put(buf.slice(buf.position(), n));
      buf.position(buf.position() + n);
    }
    while (dst.hasRemaining()) {
      if (readSome(dst) < 0) {
        throw new java.io.EOFException("connection ended with " + dst.remaining() + " bytes of a chunk missing");
      }
    }
  }

  private int fill() throws IOException {
    buf.clear();
    int n;
    try {
      n = readSome(buf);
    } finally {
      buf.flip();
    }
    return n;
  }

  /** One read from the connection into {@code dst}: at least one byte, or -1 at its end. */
  private int readSome(ByteBuffer dst) throws IOException {
    try {
      int n;
      if (channel != null) {
        n = readChannel(dst);
      } else if (dst.hasArray()) {
        n = stream.read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
        if (n > 0) {
          dst.position(dst.position() + n);
        }
      } else {
        if (scratch == null) {
          scratch = new byte[BUFFER];
        }
        n = stream.read(scratch, 0, Math.min(scratch.length, dst.remaining()));
        if (n > 0) {
          dst.put(scratch, 0, n);
        }
      }
      broken |= n < 0;
      return n;
    } catch (IOException e) {
      broken = true;
      throw e;
    }
  }

  private int readChannel(ByteBuffer dst) throws IOException {
    deadline.begin(timeoutNanos);
    try {
      int n;
      do {
        n = channel.read(dst); // blocking: 0 only for a full buffer, which callers never pass
      } while (n == 0);
      return n;
    } catch (AsynchronousCloseException e) {
      if (deadline.expired()) {
        throw new SocketTimeoutException("no data from the sender for " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos)
            + " ms");
      }
      throw e;
    } finally {
      deadline.end();
    }
  }

  private void closeChannel() {
    try {
      channel.close(); // the blocked read fails with AsynchronousCloseException
    } catch (IOException e) {
      // closed already
    }
  }

  /** Nothing to release: the connection is its owner's to close. */
  @Override
  public void close() {}
}
