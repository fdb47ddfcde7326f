package dev.ferry.transfer.memory;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Speaks the server side of CRIU's page-server protocol, as far as CRIU's lazy-pages daemon
 * uses it, over a {@link TargetPageStore}: the daemon that fills a restored process's memory
 * asks Ferry for pages instead of the source's CRIU. That lets the pages come from where they
 * already are (pre-copy rounds on this host) and lets the source send only what changed.
 *
 * <p>Protocol (criu/page-xfer.c, CRIU 4.x), host byte order (little-endian here): requests
 * are 32-byte {@code page_server_iov} headers {@code cmd:u32 pad:u32 nr_pages:u64 vaddr:u64
 * dst_id:u64}. {@code PS_IOV_GET} (7) with {@code dst_id} = the pid inside the container is
 * answered by the same header with {@code cmd = PS_IOV_ADD_F | PE_PRESENT << 16} and
 * {@code nr_pages} lowered to what follows, then the pages; requests are answered in order.
 * {@code PS_IOV_CLOSE} (0x1023) is answered by a 4-byte status 0. There is no handshake.
 */
public final class CriuPageServer implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(CriuPageServer.class);
  static final int PS_IOV_GET = 7;
  static final int PS_IOV_ADD_F = 6;
  static final int PS_IOV_CLOSE = 0x1023;
  static final int PS_IOV_FORCE_CLOSE = 0x1024;
  static final int PE_PRESENT = 4;
  private static final int HEADER = 32;
  /** The daemon asks for at most 4 MiB at once. */
  private static final int MAX_PAGES = 1024;

  private final ServerSocket server;
  private final TargetPageStore store;
  private final long waitMs;
  private final CompletableFuture<Long> done = new CompletableFuture<>();
  private volatile long served;

  /**
   * Listens on a free loopback port; serves one client (the lazy-pages daemon) and ends when
   * it says it is done.
   *
   * @param waitMs how long a request may wait for a page still on its way
   */
  public CriuPageServer(TargetPageStore store, long waitMs) throws IOException {
    this.store = store;
    this.waitMs = waitMs;
    this.server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    Thread t = new Thread(this::serve, "ferry-criu-page-server");
    t.setDaemon(true);
    t.start();
  }

  public String address() {
    return server.getInetAddress().getHostAddress() + ":" + server.getLocalPort();
  }

  /** Completes with the pages served once the daemon closed the session, or exceptionally. */
  public CompletableFuture<Long> done() {
    return done;
  }

  private void serve() {
    try (server; Socket s = server.accept()) {
      s.setTcpNoDelay(true);
      InputStream in = s.getInputStream();
      OutputStream out = s.getOutputStream();
      ByteBuffer req = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer reply = ByteBuffer.allocate(HEADER + MAX_PAGES * TargetPageStore.PAGE_SIZE).order(ByteOrder.LITTLE_ENDIAN);
      while (true) {
        req.clear();
        if (!readFully(in, req.array())) {
          throw new IOException("lazy-pages daemon hung up without closing the session");
        }
        int cmd = req.getInt(0);
        int op = cmd & 0xffff;
        if (op == PS_IOV_CLOSE || op == PS_IOV_FORCE_CLOSE) {
          out.write(new byte[4]); // status 0
          out.flush();
          done.complete(served);
          in.read(); // let the daemon close first, as CRIU's own server does
          return;
        }
        if (op != PS_IOV_GET) {
          throw new IOException("lazy-pages daemon sent unsupported command 0x" + Integer.toHexString(cmd));
        }
        long nr = req.getLong(8);
        long vaddr = req.getLong(16);
        long pid = req.getLong(24);
        int want = (int) Math.min(Math.max(nr, 1), MAX_PAGES);
        reply.clear().position(HEADER);
        int n = store.serve(pid, vaddr, want, reply, waitMs);
        reply.putInt(0, PS_IOV_ADD_F | (PE_PRESENT << 16));
        reply.putInt(4, req.getInt(4));
        reply.putLong(8, n);
        reply.putLong(16, vaddr);
        reply.putLong(24, pid);
        out.write(reply.array(), 0, HEADER + n * TargetPageStore.PAGE_SIZE);
        out.flush();
        served += n;
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn("page server for the lazy-pages daemon failed: {}", e.getMessage());
      done.completeExceptionally(e);
    }
  }

  private static boolean readFully(InputStream in, byte[] b) throws IOException {
    int off = 0;
    while (off < b.length) {
      int n = in.read(b, off, b.length - off);
      if (n < 0) {
        return false;
      }
      off += n;
    }
    return true;
  }

  @Override
  public void close() throws IOException {
    server.close();
  }
}
