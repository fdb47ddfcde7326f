package dev.ferry.transfer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketException;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSession;

/**
 * A connection of {@link PeerTls} over TLS through BoringSSL, as the {@link Socket} the rest of
 * Ferry passes around: its streams and its {@link #channel()} both carry plaintext through one
 * {@link TlsChannel}; addresses and options are those of the TCP socket under it. It has no
 * {@link #getChannel()} (that would bypass TLS): {@link WireInput} and {@link WireOutput} use
 * {@link #channel()} instead. Read timeouts ({@link #setSoTimeout}) hold for the streams and the
 * channel alike.
 */
final class TlsSocket extends Socket {
  private final SocketChannel tcp;
  private final Socket raw;
  private final TlsChannel tls;
  private final InputStream in;
  private final OutputStream out;

  /** @param tcp connected, blocking; @param engine its handshake not begun (done on first use or by {@link #handshake}) */
  TlsSocket(SocketChannel tcp, SSLEngine engine) {
    this.tcp = tcp;
    this.raw = tcp.socket();
    this.tls = new TlsChannel(tcp, engine);
    this.in = Channels.newInputStream(tls);
    this.out = Channels.newOutputStream(tls);
  }

  /** The plaintext channel: reads and writes direct buffers through TLS. */
  TlsChannel channel() {
    return tls;
  }

  void handshake() throws IOException {
    tls.handshake();
  }

  SSLSession session() {
    return tls.session();
  }

  /** See {@link TlsChannel#abort}. */
  void abort() {
    tls.abort();
  }

  @Override
  public InputStream getInputStream() throws IOException {
    checkOpen();
    return in;
  }

  @Override
  public OutputStream getOutputStream() throws IOException {
    checkOpen();
    return out;
  }

  private void checkOpen() throws SocketException {
    if (isClosed()) {
      throw new SocketException("Socket is closed");
    }
  }

  @Override
  public java.nio.channels.SocketChannel getChannel() {
    return null;
  }

  @Override
  public synchronized void close() throws IOException {
    tls.close();
  }

  @Override
  public boolean isClosed() {
    return !tcp.isOpen();
  }

  @Override
  public boolean isConnected() {
    return raw.isConnected();
  }

  @Override
  public boolean isBound() {
    return raw.isBound();
  }

  @Override
  public void shutdownInput() throws IOException {
    raw.shutdownInput();
  }

  @Override
  public void shutdownOutput() throws IOException {
    raw.shutdownOutput();
  }

  @Override
  public synchronized void setSoTimeout(int timeout) throws SocketException {
    raw.setSoTimeout(timeout);
  }

  @Override
  public synchronized int getSoTimeout() throws SocketException {
    return raw.getSoTimeout();
  }

  @Override
  public void setTcpNoDelay(boolean on) throws SocketException {
    raw.setTcpNoDelay(on);
  }

  @Override
  public boolean getTcpNoDelay() throws SocketException {
    return raw.getTcpNoDelay();
  }

  @Override
  public void setKeepAlive(boolean on) throws SocketException {
    raw.setKeepAlive(on);
  }

  @Override
  public void setSoLinger(boolean on, int linger) throws SocketException {
    raw.setSoLinger(on, linger);
  }

  @Override
  public synchronized void setSendBufferSize(int size) throws SocketException {
    raw.setSendBufferSize(size);
  }

  @Override
  public synchronized void setReceiveBufferSize(int size) throws SocketException {
    raw.setReceiveBufferSize(size);
  }

  @Override
  public InetAddress getInetAddress() {
    return raw.getInetAddress();
  }

  @Override
  public InetAddress getLocalAddress() {
    return raw.getLocalAddress();
  }

  @Override
  public int getPort() {
    return raw.getPort();
  }

  @Override
  public int getLocalPort() {
    return raw.getLocalPort();
  }

  @Override
  public SocketAddress getRemoteSocketAddress() {
    return raw.getRemoteSocketAddress();
  }

  @Override
  public SocketAddress getLocalSocketAddress() {
    return raw.getLocalSocketAddress();
  }

  @Override
  public String toString() {
    return "TLS (BoringSSL) " + raw;
  }
}
