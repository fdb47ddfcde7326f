package dev.ferry.transfer;

import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;

/**
 * TLS over a blocking {@link SocketChannel}, driven through an {@link SSLEngine} (BoringSSL's,
 * from {@link NativeTls}) with direct buffers only: records are read from the socket into a direct
 * buffer and decrypted straight into the caller's buffer when it has room for a record (a chunk
 * buffer always has), and written from the caller's direct buffer encrypted into a direct buffer
 * sent in batches of up to 16 records, one system call per batch.
 *
 * <p>Blocking, like a socket: {@link #read} waits for at least one byte (or the end), {@link
 * #write} until everything is sent. One thread may read while another writes. The handshake
 * happens on the first read or write (or {@link #handshake}), as with an {@code SSLSocket}; a
 * peer the engine refuses (no certificate, another CA's) fails it with an {@link SSLException}.
 * Reads, the handshake included, time out after the socket's SO_TIMEOUT (channel reads do not
 * honour it themselves: an {@link IoDeadline} closes the channel under them) with a {@link
 * SocketTimeoutException}. {@link #abort} ends the connection at once, whatever is blocked on it.
 */
final class TlsChannel implements ByteChannel {
  private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
  /** How long {@link #close} may wait to send its close_notify before it just closes. */
  private static final long CLOSE_NOTIFY_NANOS = TimeUnit.SECONDS.toNanos(1);
  private static final int BATCH_RECORDS = 16;

  private final SocketChannel channel;
  private final SSLEngine engine;
  /** Room for the plaintext of any record (BoringSSL's engine wants its ciphertext's length). */
  private final int recordRoom;
  private final int packetSize;
  private final ReentrantLock readLock = new ReentrantLock();
  private final ReentrantLock writeLock = new ReentrantLock();
  private final IoDeadline readDeadline = new IoDeadline(this::abort);
  private final IoDeadline writeDeadline = new IoDeadline(this::abort);
  private final AtomicBoolean open = new AtomicBoolean(true);

  /** Ciphertext read and not yet decrypted (write mode). Guarded by readLock. */
  private final ByteBuffer netIn;
  /** Plaintext decrypted and not yet taken (read mode). Guarded by readLock. */
  private final ByteBuffer appIn;
  /** Ciphertext not yet sent (write mode). Guarded by writeLock. */
  private final ByteBuffer netOut;
  private volatile boolean handshaken;
  private IOException handshakeFailure;
  private boolean inboundDone;

  /** @param channel connected, in blocking mode; @param engine in client or server mode, its handshake not begun */
  TlsChannel(SocketChannel channel, SSLEngine engine) {
    this.channel = channel;
    this.engine = engine;
    this.packetSize = engine.getSession().getPacketBufferSize();
    this.recordRoom = Math.max(engine.getSession().getApplicationBufferSize(), packetSize);
    this.netIn = ByteBuffer.allocateDirect(BATCH_RECORDS * packetSize);
    this.appIn = ByteBuffer.allocateDirect(recordRoom).flip();
    this.netOut = ByteBuffer.allocateDirect(BATCH_RECORDS * packetSize);
  }

  /** The TLS session (after the handshake: the peer's certificates, the cipher suite). */
  javax.net.ssl.SSLSession session() {
    return engine.getSession();
  }

  /** Completes the handshake unless done already; a failure is remembered and thrown again by later calls. */
  void handshake() throws IOException {
    if (handshaken) {
      return;
    }
    readLock.lock();
    writeLock.lock();
    try {
      if (handshaken) {
        return;
      }
      if (handshakeFailure != null) {
        throw handshakeFailure;
      }
      try {
        shakeHands();
        handshaken = true;
      } catch (IOException e) {
        handshakeFailure = e;
        sendAlert();
        throw e;
      }
    } finally {
      writeLock.unlock();
      readLock.unlock();
    }
  }

  private void shakeHands() throws IOException {
    engine.beginHandshake();
    HandshakeStatus hs = engine.getHandshakeStatus();
    while (true) {
      switch (hs) {
        case NEED_WRAP -> {
          SSLEngineResult r = engine.wrap(EMPTY, netOut);
          flushNetOut();
          if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
            throw new SSLHandshakeException("TLS closed during the handshake");
          }
          hs = r.getHandshakeStatus();
        }
        case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
          SSLEngineResult r = unwrapToApp();
          if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
            throw new SSLHandshakeException("the peer closed TLS during the handshake");
          }
          hs = r.getHandshakeStatus();
          boolean starved = r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW || r.bytesConsumed() == 0;
          if (starved && (hs == HandshakeStatus.NEED_UNWRAP || hs == HandshakeStatus.NEED_UNWRAP_AGAIN)
              && fillNetIn() < 0) {
            throw new SSLHandshakeException("the peer closed the connection during the TLS handshake");
          }
        }
        case NEED_TASK -> {
          runTasks();
          hs = engine.getHandshakeStatus();
        }
        default -> {
          return; // FINISHED, NOT_HANDSHAKING
        }
      }
    }
  }

  /** Best effort, after a failed handshake: the engine's alert tells the peer why. */
  private void sendAlert() {
    try {
      netOut.clear(); // what a failed handshake left unsent
      sendClosing();
    } catch (IOException | RuntimeException e) {
      // the connection is gone already
    }
  }

  /** Closes the engine's outbound side and sends what that makes (an alert or close_notify), waiting a second at most. */
  private void sendClosing() throws IOException {
    engine.closeOutbound();
    engine.wrap(EMPTY, netOut);
    writeDeadline.begin(CLOSE_NOTIFY_NANOS);
    try {
      flushNetOut();
    } finally {
      writeDeadline.end();
    }
  }

  @Override
  public int read(ByteBuffer dst) throws IOException {
    if (!dst.hasRemaining()) {
      return 0;
    }
    handshake();
    readLock.lock();
    try {
      while (true) {
        if (appIn.hasRemaining()) {
          return take(dst);
        }
        if (inboundDone) {
          return -1;
        }
        int n = unwrapBuffered(dst);
        if (n > 0 || appIn.hasRemaining()) {
          return n > 0 ? n : take(dst);
        }
        if (!inboundDone && fillNetIn() < 0) {
          inboundDone = true; // the end of the connection (without close_notify: what it carried tells whether it was whole)
        }
      }
    } finally {
      readLock.unlock();
    }
  }

  /** Moves plaintext decrypted earlier into {@code dst}. */
  private int take(ByteBuffer dst) {
    int n = Math.min(dst.remaining(), appIn.remaining());
    dst.put(appIn.slice(appIn.position(), n));
    appIn.position(appIn.position() + n);
    return n;
  }

  /**
   * Decrypts the whole records read already, straight into {@code dst} while it has room for one,
   * else one record into {@link #appIn}; reads nothing from the socket. Returns what went into
   * {@code dst}.
   */
  private int unwrapBuffered(ByteBuffer dst) throws IOException {
    int start = dst.position();
    netIn.flip();
    try {
      while (netIn.hasRemaining() && !inboundDone) {
        SSLEngineResult r;
        if (dst.remaining() >= recordRoom) {
          r = engine.unwrap(netIn, dst);
        } else if (dst.position() > start) {
          break; // something for the caller already; the rest stays encrypted for the next read
        } else {
          r = unwrapFromReadMode();
        }
        if (!afterUnwrap(r) || appIn.hasRemaining()) {
          break;
        }
      }
    } finally {
      netIn.compact();
    }
    return dst.position() - start;
  }

  /** One unwrap from {@link #netIn} (read mode) into {@link #appIn} (which is empty). */
  private SSLEngineResult unwrapFromReadMode() throws SSLException {
    appIn.clear();
    try {
      return engine.unwrap(netIn, appIn);
    } finally {
      appIn.flip();
    }
  }

  /** One unwrap from {@link #netIn} (write mode, as kept between calls) into {@link #appIn}. */
  private SSLEngineResult unwrapToApp() throws SSLException {
    netIn.flip();
    try {
      appIn.compact();
      try {
        return engine.unwrap(netIn, appIn);
      } finally {
        appIn.flip();
      }
    } finally {
      netIn.compact();
    }
  }

  /** Handles what an unwrap asks for; false when more must be read first (or the peer closed TLS). */
  private boolean afterUnwrap(SSLEngineResult r) throws IOException {
    switch (r.getStatus()) {
      case BUFFER_UNDERFLOW:
        return false;
      case CLOSED:
        inboundDone = true;
        return false;
      case BUFFER_OVERFLOW:
        if (r.bytesProduced() == 0) {
          throw new SSLException("TLS record larger than " + recordRoom + " bytes");
        }
        return true; // BoringSSL's engine decrypts records while they fit: this one did not
      default:
        if (r.bytesConsumed() == 0 && r.bytesProduced() == 0) {
          return false; // nothing it could use: more must be read
        }
    }
    HandshakeStatus hs = r.getHandshakeStatus();
    if (hs == HandshakeStatus.NEED_TASK) {
      runTasks();
      hs = engine.getHandshakeStatus();
    }
    if (hs == HandshakeStatus.NEED_WRAP) {
      answerPostHandshake(); // a key update's answer, say
    }
    return true;
  }

  private void answerPostHandshake() throws IOException {
    writeLock.lock();
    try {
      while (engine.getHandshakeStatus() == HandshakeStatus.NEED_WRAP) {
        SSLEngineResult r = engine.wrap(EMPTY, netOut);
        if (r.bytesProduced() == 0) {
          break;
        }
      }
      flushNetOut();
    } finally {
      writeLock.unlock();
    }
  }

  /** Reads what the socket has (at least one byte) into {@link #netIn}; -1 at its end. */
  private int fillNetIn() throws IOException {
    int n;
    int timeoutMs = channel.socket().getSoTimeout();
    readDeadline.begin(TimeUnit.MILLISECONDS.toNanos(timeoutMs));
    try {
      do {
        n = channel.read(netIn);
      } while (n == 0); // blocking: 0 only for a full buffer, which an underflow never leaves
    } catch (IOException e) { // AsynchronousCloseException when the deadline closed the channel
      throw readDeadline.expired() ? timedOut(timeoutMs) : e;
    } finally {
      readDeadline.end();
    }
    if (n < 0 && readDeadline.expired()) {
      throw timedOut(timeoutMs); // the deadline's shutdown woke the read as an end of stream
    }
    return n;
  }

  private static SocketTimeoutException timedOut(int timeoutMs) {
    return new SocketTimeoutException("no data from the peer for " + timeoutMs + " ms");
  }

  @Override
  public int write(ByteBuffer src) throws IOException {
    handshake();
    int n = src.remaining();
    writeLock.lock();
    try {
      while (src.hasRemaining()) {
        while (src.hasRemaining() && netOut.remaining() >= packetSize) {
          SSLEngineResult r = engine.wrap(src, netOut);
          if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
            throw new ClosedChannelException();
          }
          if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
            break;
          }
          if (r.getHandshakeStatus() == HandshakeStatus.NEED_TASK) {
            runTasks();
          }
        }
        flushNetOut();
      }
    } finally {
      writeLock.unlock();
    }
    return n;
  }

  /** Sends all of {@link #netOut}; leaves it empty. */
  private void flushNetOut() throws IOException {
    netOut.flip();
    try {
      while (netOut.hasRemaining()) {
        channel.write(netOut);
      }
    } finally {
      netOut.compact();
    }
  }

  private void runTasks() {
    Runnable task;
    while ((task = engine.getDelegatedTask()) != null) {
      task.run();
    }
  }

  @Override
  public boolean isOpen() {
    return open.get() && channel.isOpen();
  }

  /**
   * Sends a close_notify (unless another thread is writing, or the handshake never completed;
   * waiting a second at most) and closes the connection.
   */
  @Override
  public void close() throws IOException {
    if (!open.compareAndSet(true, false)) {
      return;
    }
    try {
      if (handshaken && channel.isOpen() && writeLock.tryLock()) {
        try {
          sendClosing();
        } catch (IOException | RuntimeException e) {
          // the peer is gone: nothing to tell it
        } finally {
          writeLock.unlock();
        }
      }
    } finally {
      channel.close();
      releaseEngine();
    }
  }

  private void releaseEngine() {
    engine.closeOutbound();
    try {
      engine.closeInbound(); // with BoringSSL's engine, frees its native state
    } catch (SSLException e) {
      // no close_notify from the peer: expected when we close first
    }
  }

  /**
   * Ends the connection at once, whatever other threads are doing with it: a blocked read or
   * write fails now. Sends nothing (a close_notify would wait for a writer blocked on a dead link).
   */
  void abort() {
    try {
      channel.socket().shutdownOutput();
      channel.socket().shutdownInput();
    } catch (IOException e) {
      // not connected, or shut already
    }
    try {
      channel.close();
    } catch (IOException e) {
      // closed already
    }
  }
}
