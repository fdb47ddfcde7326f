package dev.ferry.cli.demo;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One Redis connection speaking RESP, kept deliberately small: the demo must own its single
 * TCP socket (no pool, no silent reconnect), since what it proves is that this very
 * connection survives the migration.
 */
public final class RespConnection implements AutoCloseable {
  private final Socket socket;
  private final InputStream in;
  private final OutputStream out;

  public RespConnection(String host, int port, int timeoutMs) throws IOException {
    this(host, port, timeoutMs, timeoutMs);
  }

  /** With a connect timeout of its own (a reconnecting client retries with a fresh SYN rather than wait for TCP's 1 s retransmission). */
  public RespConnection(String host, int port, int connectTimeoutMs, int timeoutMs) throws IOException {
    socket = new Socket();
    socket.connect(new InetSocketAddress(host, port), connectTimeoutMs);
    socket.setSoTimeout(timeoutMs);
    socket.setTcpNoDelay(true);
    in = new BufferedInputStream(socket.getInputStream(), 1 << 16);
    out = new BufferedOutputStream(socket.getOutputStream(), 1 << 16);
  }

  /** Sets how long a reply may take before a call fails. */
  public void timeout(int ms) throws IOException {
    socket.setSoTimeout(ms);
  }

  /** Local port of the connection: it stays the same for as long as the connection lives. */
  public int localPort() {
    return socket.getLocalPort();
  }

  /** Sends one command and reads its reply: a String, Long, List, or null for a nil. */
  public Object call(String... args) throws IOException {
    write(args);
    out.flush();
    return read();
  }

  /** Sends several commands at once and reads all their replies. */
  public List<Object> pipeline(List<String[]> commands) throws IOException {
    for (String[] c : commands) {
      write(c);
    }
    out.flush();
    List<Object> replies = new ArrayList<>();
    for (int i = 0; i < commands.size(); i++) {
      replies.add(read());
    }
    return replies;
  }

  private void write(String... args) throws IOException {
    StringBuilder b = new StringBuilder();
    b.append('*').append(args.length).append("\r\n");
    for (String a : args) {
      byte[] bytes = a.getBytes(StandardCharsets.UTF_8);
      b.append('$').append(bytes.length).append("\r\n").append(a).append("\r\n");
    }
    out.write(b.toString().getBytes(StandardCharsets.UTF_8));
  }

  private Object read() throws IOException {
    int type = in.read();
    if (type < 0) {
      throw new IOException("connection closed by the server");
    }
    String line = readLine();
    switch (type) {
      case '+':
        return line;
      case '-':
        throw new IOException("redis error: " + line);
      case ':':
        return Long.parseLong(line);
      case '$': {
        int len = Integer.parseInt(line);
        if (len < 0) {
          return null;
        }
        byte[] data = in.readNBytes(len);
        readLine();
        return new String(data, StandardCharsets.UTF_8);
      }
      case '*': {
        int n = Integer.parseInt(line);
        List<Object> items = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          items.add(read());
        }
        return items;
      }
      default:
        throw new IOException("unexpected RESP type '" + (char) type + "'");
    }
  }

  private String readLine() throws IOException {
    StringBuilder b = new StringBuilder();
    int c;
    while ((c = in.read()) != '\r') {
      if (c < 0) {
        throw new IOException("connection closed by the server");
      }
      b.append((char) c);
    }
    in.read(); // '\n'
    return b.toString();
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }
}
