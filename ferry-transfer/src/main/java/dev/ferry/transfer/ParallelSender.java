package dev.ferry.transfer;

import java.io.IOException;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Sends one transfer over several connections at once ("lanes"), for when one connection cannot
 * fill the link or one core cannot compress or encrypt fast enough. The plan is listed once and
 * shared out by {@link Lanes}: large files are cut into one chunk-aligned range per lane, smaller
 * ones go whole on one lane by turns, directories, links and deletions on lane 0. Each lane is a
 * transfer of its own to the receiver ({@code transferId#k/n}): every chunk and every range is
 * checked there, and a lane whose connection breaks resumes from its own last verified chunk
 * while the others go on. The transfer succeeded when every lane did; a lane that fails for good
 * (refused, or not resumed in time) stops the others.
 *
 * <p>With one lane this is exactly {@link ImageSender}'s resuming send under {@code transferId}.
 */
public final class ParallelSender {
  private final int lanes;
  private final List<ImageSender> senders = new ArrayList<>();

  /**
   * @param lanes connections to use, at least 1
   * @param corruptOneByte fault injection for tests: lane 0 flips one byte after its checksum
   * @param bandwidthBytesPerSecond cap on all lanes together (on the wire); 0 for none
   * @param hostCap a cap shared with every other transfer of this host; null for none
   */
  public ParallelSender(int lanes, boolean corruptOneByte, long bandwidthBytesPerSecond, Compression compression,
      RateLimiter hostCap) {
    if (lanes < 1) {
      throw new IllegalArgumentException("lanes must be at least 1, got " + lanes);
    }
    this.lanes = lanes;
    RateLimiter shared = bandwidthBytesPerSecond > 0 ? new RateLimiter(bandwidthBytesPerSecond) : null;
    for (int k = 0; k < lanes; k++) {
      senders.add(new ImageSender(corruptOneByte && k == 0, shared, compression, hostCap, new Lanes(k, lanes)));
    }
  }

  /** The transfer id lane {@code lane} of {@code lanes} announces to the receiver. */
  public static String laneId(String transferId, int lane, int lanes) {
    return lanes == 1 ? transferId : transferId + "#" + lane + "/" + lanes;
  }

  /**
   * Sends {@code sources} (with a {@code baseline}: only what changed since, see {@link
   * ImageSender}) over connections from {@code dialer}, which is called from several threads at
   * once. Returns what the receiver holds now, the baseline of a next round.
   *
   * @throws IOException the first lane's failure, after the other lanes were stopped
   */
  public Map<String, ImageSender.FileStamp> send(String transferId, List<TransferSource> sources,
      Map<String, ImageSender.FileStamp> baseline, ImageSender.Dialer dialer, long resumeWindowMs, TransferProgress progress)
      throws IOException {
    TransferPlan plan = TransferPlan.of(sources, baseline);
    if (lanes == 1) {
      return senders.get(0).send(transferId, plan, dialer, resumeWindowMs, progress);
    }
    Set<Socket> open = ConcurrentHashMap.newKeySet();
    boolean[] stopping = {false};
    ExecutorService pool = Executors.newFixedThreadPool(lanes, r -> {
      Thread t = new Thread(r, "ferry-lane");
      t.setDaemon(true);
      return t;
    });
    try {
      List<Future<?>> running = new ArrayList<>();
      for (int k = 0; k < lanes; k++) {
        ImageSender lane = senders.get(k);
        String id = laneId(transferId, k, lanes);
        TransferProgress laneProgress = new TransferProgress(progress);
        ImageSender.Dialer laneDialer = () -> {
          synchronized (stopping) {
            if (stopping[0]) {
              throw new ImageSender.TransferAbandoned("another lane of transfer " + transferId + " failed");
            }
          }
          Socket s = dialer.dial();
          open.add(s);
          return s;
        };
        running.add(pool.submit(() -> lane.send(id, plan, laneDialer, resumeWindowMs, laneProgress)));
      }
      IOException failed = null;
      for (Future<?> f : running) {
        try {
          f.get();
        } catch (ExecutionException e) {
          if (failed == null) {
            failed = e.getCause() instanceof IOException io ? io : new IOException(e.getCause().getMessage(), e.getCause());
            synchronized (stopping) {
              stopping[0] = true;
            }
            open.forEach(PeerTls::abort); // the others stop now rather than at their end
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          open.forEach(PeerTls::abort);
          throw new java.io.InterruptedIOException("interrupted while sending transfer " + transferId);
        }
      }
      if (failed != null) {
        throw failed;
      }
      progress.finish();
      return plan.now;
    } finally {
      pool.shutdownNow();
      open.forEach(s -> {
        try {
          s.close();
        } catch (IOException e) {
          // closed already
        }
      });
    }
  }

  /** What the last {@link #send} put on the wire, all lanes together. */
  public ImageSender.WireStats wireStats() {
    long z = 0;
    long c = 0;
    long r = 0;
    long w = 0;
    for (ImageSender s : senders) {
      ImageSender.WireStats x = s.wireStats();
      z += x.zeroChunks();
      c += x.compressedChunks();
      r += x.rawChunks();
      w += x.wireBytes();
    }
    return new ImageSender.WireStats(z, c, r, w);
  }

  /** How many times the lanes of the last {@link #send} resumed, together. */
  public int resumes() {
    return senders.stream().mapToInt(ImageSender::resumes).sum();
  }
}
