package dev.ferry.transfer;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketException;
import java.nio.channels.ServerSocketChannel;
import java.util.function.Supplier;
import javax.net.ssl.SSLEngine;

/**
 * The listening socket of {@link PeerTls} over TLS through BoringSSL: accepts TCP connections
 * (a channel's, honouring SO_TIMEOUT) and hands each out as a {@link TlsSocket} whose handshake
 * runs on its first read or write, in the thread that serves it (a slow or hostile peer does not
 * hold up the accepting thread), under that socket's SO_TIMEOUT.
 */
final class TlsServerSocket extends ServerSocket {
  private final ServerSocket tcp;
  private final Supplier<SSLEngine> engines;

  /** @param engines a new server-mode engine per connection */
  TlsServerSocket(Supplier<SSLEngine> engines) throws IOException {
    this.tcp = ServerSocketChannel.open().socket();
    this.engines = engines;
  }

  @Override
  public Socket accept() throws IOException {
    Socket s = tcp.accept();
    try {
      return new TlsSocket(s.getChannel(), engines.get());
    } catch (RuntimeException e) {
      s.close();
      throw new IOException("cannot start TLS for " + s.getRemoteSocketAddress() + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void bind(SocketAddress endpoint) throws IOException {
    tcp.bind(endpoint);
  }

  @Override
  public void bind(SocketAddress endpoint, int backlog) throws IOException {
    tcp.bind(endpoint, backlog);
  }

  @Override
  public void close() throws IOException {
    tcp.close();
  }

  @Override
  public boolean isClosed() {
    return tcp.isClosed();
  }

  @Override
  public boolean isBound() {
    return tcp.isBound();
  }

  @Override
  public InetAddress getInetAddress() {
    return tcp.getInetAddress();
  }

  @Override
  public int getLocalPort() {
    return tcp.getLocalPort();
  }

  @Override
  public SocketAddress getLocalSocketAddress() {
    return tcp.getLocalSocketAddress();
  }

  @Override
  public void setReuseAddress(boolean on) throws SocketException {
    tcp.setReuseAddress(on);
  }

  @Override
  public boolean getReuseAddress() throws SocketException {
    return tcp.getReuseAddress();
  }

  @Override
  public void setSoTimeout(int timeout) throws SocketException {
    tcp.setSoTimeout(timeout);
  }

  @Override
  public int getSoTimeout() throws IOException {
    return tcp.getSoTimeout();
  }

  @Override
  public void setReceiveBufferSize(int size) throws SocketException {
    tcp.setReceiveBufferSize(size);
  }

  @Override
  public java.nio.channels.ServerSocketChannel getChannel() {
    return null;
  }

  @Override
  public String toString() {
    return "TLS (BoringSSL) " + tcp;
  }
}
