package dev.ferry.transfer.memory;

import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Target side of the page pump: accepts one connection from the source's {@link PagePump},
 * stores what it sends in a {@link TargetPageStore}, passes on the store's wants, and
 * acknowledges the end once everything verified.
 */
public final class PumpReceiver implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(PumpReceiver.class);
  private final ServerSocket server;
  private final TargetPageStore store;
  private final CompletableFuture<Long> done = new CompletableFuture<>();
  private final LinkedBlockingQueue<long[]> wants = new LinkedBlockingQueue<>();
  private volatile Socket socket;

  /** Listens on {@code bindIp} (this host's address on the hosts' network), any free port. */
  public PumpReceiver(String bindIp, TargetPageStore store, int stallMs) throws IOException {
    this.server = new ServerSocket(0, 1, InetAddress.getByName(bindIp));
    this.store = store;
    store.onWant((pid, vaddr, count) -> wants.add(new long[] {pid, vaddr, count}));
    Thread t = new Thread(() -> run(stallMs), "ferry-pump-receiver");
    t.setDaemon(true);
    t.start();
  }

  public String address() {
    return server.getInetAddress().getHostAddress() + ":" + server.getLocalPort();
  }

  /** Completes with the pages received once all arrived, or exceptionally. */
  public CompletableFuture<Long> done() {
    return done;
  }

  private void run(int stallMs) {
    try (server; Socket s = server.accept()) {
      socket = s;
      s.setSoTimeout(stallMs);
      s.setTcpNoDelay(true);
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      Thread writer = new Thread(() -> writeWants(out), "ferry-pump-wants");
      writer.setDaemon(true);
      writer.start();
      long pages;
      try {
        pages = store.receive(new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 20)));
      } catch (IOException e) {
        synchronized (out) {
          out.writeByte(PumpProtocol.REFUSED);
          out.writeUTF(String.valueOf(e.getMessage()));
          out.flush();
        }
        throw e;
      }
      writer.interrupt();
      synchronized (out) {
        out.writeByte(PumpProtocol.ACK);
        out.writeLong(pages);
        out.flush();
      }
      done.complete(pages);
    } catch (IOException | RuntimeException e) {
      LOG.warn("page pump from the source failed: {}", e.getMessage());
      store.fail("the page pump from the source failed: " + e.getMessage());
      done.completeExceptionally(e);
    }
  }

  private void writeWants(DataOutputStream out) {
    try {
      while (true) {
        long[] w = wants.take();
        synchronized (out) {
          out.writeByte(PumpProtocol.WANT);
          out.writeLong(w[0]);
          out.writeLong(w[1]);
          out.writeInt((int) w[2]);
          out.flush();
        }
      }
    } catch (InterruptedException | IOException e) {
      // pump over
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    Socket s = socket;
    if (s != null) {
      s.close();
    }
  }
}
