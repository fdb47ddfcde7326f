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
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Target side of the page pump: accepts its two connections (bulk and priority lanes, see
 * {@link PumpProtocol}), stores what they carry in a {@link TargetPageStore}, sends the store's
 * wants on the priority lane, and acknowledges on the bulk lane once everything verified.
 */
public final class PumpReceiver implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(PumpReceiver.class);
  private final ServerSocket server;
  private final TargetPageStore store;
  private final CompletableFuture<Long> done = new CompletableFuture<>();
  private final LinkedBlockingQueue<long[]> wants = new LinkedBlockingQueue<>();
  private final int stallMs;
  private volatile Socket bulk;
  private volatile Socket priority;

  /** Listens on {@code bindIp} (this host's address on the hosts' network), any free port. */
  public PumpReceiver(String bindIp, TargetPageStore store, int stallMs) throws IOException {
    this.server = new ServerSocket(0, 2, InetAddress.getByName(bindIp));
    this.store = store;
    this.stallMs = stallMs;
    store.onWant((pid, vaddr, count) -> wants.add(new long[] {pid, vaddr, count}));
    Thread t = new Thread(this::run, "ferry-pump-receiver");
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

  private void run() {
    try (server) {
      for (int i = 0; i < 2; i++) {
        Socket s = server.accept();
        s.setTcpNoDelay(true);
        byte lane = (byte) s.getInputStream().read();
        if (lane == PumpProtocol.LANE_BULK) {
          bulk = s;
        } else if (lane == PumpProtocol.LANE_PRIORITY) {
          priority = s;
        } else {
          s.close();
          throw new IOException("a page pump connection named no lane (" + lane + ")");
        }
      }
      if (bulk == null || priority == null) {
        throw new IOException("the page pump opened the same lane twice");
      }
      bulk.setSoTimeout(stallMs);
      DataOutputStream wantOut = new DataOutputStream(priority.getOutputStream());
      Thread writer = new Thread(() -> writeWants(wantOut), "ferry-pump-wants");
      writer.setDaemon(true);
      writer.start();
      CompletableFuture<long[]> fast = CompletableFuture.supplyAsync(() -> {
        try {
          return store.receive(new DataInputStream(new BufferedInputStream(priority.getInputStream(), 1 << 16)));
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      DataOutputStream ackOut = new DataOutputStream(bulk.getOutputStream());
      long total;
      try {
        long[] main = store.receive(new DataInputStream(new BufferedInputStream(bulk.getInputStream(), 1 << 20)));
        long[] prio = fast.get(60, TimeUnit.SECONDS);
        total = main[0] + prio[0];
        if (main[1] != total || prio[1] != prio[0]) {
          throw new IOException("pump sent " + main[1] + " pages, " + total + " arrived");
        }
      } catch (Exception e) {
        String why = e instanceof java.util.concurrent.ExecutionException ee ? ee.getCause().getMessage() : e.getMessage();
        ackOut.writeByte(PumpProtocol.REFUSED);
        ackOut.writeUTF(String.valueOf(why));
        ackOut.flush();
        throw new IOException(why, e);
      }
      store.complete();
      writer.interrupt();
      ackOut.writeByte(PumpProtocol.ACK);
      ackOut.writeLong(total);
      ackOut.flush();
      done.complete(total);
    } catch (IOException | RuntimeException e) {
      LOG.warn("page pump from the source failed: {}", e.getMessage());
      store.fail("the page pump from the source failed: " + e.getMessage());
      done.completeExceptionally(e);
    } finally {
      closeQuietly(bulk);
      closeQuietly(priority);
    }
  }

  private void writeWants(DataOutputStream out) {
    try {
      while (true) {
        long[] w = wants.take();
        out.writeByte(PumpProtocol.WANT);
        out.writeLong(w[0]);
        out.writeLong(w[1]);
        out.writeInt((int) w[2]);
        out.flush();
      }
    } catch (InterruptedException | IOException e) {
      // pump over
    }
  }

  private static void closeQuietly(Socket s) {
    if (s != null) {
      try {
        s.close();
      } catch (IOException e) {
        // closing
      }
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    closeQuietly(bulk);
    closeQuietly(priority);
  }
}
