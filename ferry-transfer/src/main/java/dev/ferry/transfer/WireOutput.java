package dev.ferry.transfer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;

/**
 * The sending end of a transfer connection. Small fields are buffered; chunk bodies go out
 * unbuffered. Over a plain socket with a channel, a body goes from a direct buffer to the socket
 * (no copy through the Java heap), over a {@link TlsChannel} from a direct buffer to BoringSSL;
 * over anything else (JSSE's TLS, a test's stream) through a heap buffer.
 */
final class WireOutput extends OutputStream {
  private static final int BUFFER = 1 << 16;
  /** null when writing to {@link #stream}. */
  private final WritableByteChannel channel;
  private final OutputStream stream;
  private final ByteBuffer buf;
  private byte[] scratch;

  private WireOutput(WritableByteChannel channel, OutputStream stream) {
    this.channel = channel;
    this.stream = stream;
    this.buf = channel != null ? ByteBuffer.allocateDirect(BUFFER) : ByteBuffer.allocate(BUFFER);
  }

  /**
   * Writes to {@code s}'s channel when it has one in blocking mode (plain TCP from {@link
   * PeerTls}) or to its {@link TlsChannel} (TLS through BoringSSL), else to its stream.
   */
  static WireOutput of(Socket s) throws IOException {
    if (s instanceof TlsSocket tls) {
      return new WireOutput(tls.channel(), null);
    }
    SocketChannel ch = s.getChannel();
    return ch != null && ch.isBlocking() ? new WireOutput(ch, null) : new WireOutput(null, s.getOutputStream());
  }

  static WireOutput of(OutputStream out) {
    return new WireOutput(null, out);
  }

  /** True over a channel: chunk bodies are best read into, and written from, direct buffers. */
  boolean direct() {
    return channel != null;
  }

  @Override
  public void write(int b) throws IOException {
    if (!buf.hasRemaining()) {
      flushBuffer();
    }
    buf.put((byte) b);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    if (len > buf.remaining()) {
      flushBuffer();
      if (len > buf.capacity()) {
        write(ByteBuffer.wrap(b, off, len));
        return;
      }
    }
    buf.put(b, off, len);
  }

  /** Writes {@code src}'s remaining bytes (after what is buffered); consumes them. */
  void write(ByteBuffer src) throws IOException {
    flushBuffer();
    if (channel != null) {
      while (src.hasRemaining()) {
        channel.write(src);
      }
    } else if (src.hasArray()) {
      stream.write(src.array(), src.arrayOffset() + src.position(), src.remaining());
      src.position(src.limit());
    } else {
      if (scratch == null) {
        scratch = new byte[BUFFER];
      }
      while (src.hasRemaining()) {
        int n = Math.min(scratch.length, src.remaining());
        src.get(scratch, 0, n);
        stream.write(scratch, 0, n);
      }
    }
  }

  @Override
  public void flush() throws IOException {
    flushBuffer();
    if (stream != null) {
      stream.flush();
    }
  }

  private void flushBuffer() throws IOException {
    buf.flip();
    try {
      if (channel != null) {
        while (buf.hasRemaining()) {
          channel.write(buf);
        }
      } else if (buf.hasRemaining()) {
        stream.write(buf.array(), 0, buf.limit());
      }
    } finally {
      buf.clear();
    }
  }
}
