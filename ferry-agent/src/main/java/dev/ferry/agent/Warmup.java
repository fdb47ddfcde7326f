package dev.ferry.agent;

import dev.ferry.runtime.Files2;
import dev.ferry.transfer.ImageReceiver;
import dev.ferry.transfer.ImageSender;
import dev.ferry.transfer.TransferProgress;
import dev.ferry.transfer.TransferSource;
import java.io.IOException;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the image transfer path a few times at agent start, in memory. A fresh JVM interprets
 * it at first: the first migration's frozen round then took ~90 ms for 1 MB in 28 files, most
 * of it interpreted code, all of it with the pod frozen. Compiled, it takes a few ms.
 */
final class Warmup {
  private static final Logger LOG = LoggerFactory.getLogger(Warmup.class);

  private Warmup() {}

  static void inBackground(Path stateDir) {
    Thread t = new Thread(() -> {
      long t0 = System.nanoTime();
      Path dir = stateDir.resolve("warmup");
      try {
        Path src = Files.createDirectories(dir.resolve("src"));
        Random rnd = new Random(1);
        for (int i = 0; i < 32; i++) {
          byte[] b = new byte[8192 * (1 + i % 8)];
          rnd.nextBytes(b);
          Files.write(src.resolve("f" + i + ".img"), b);
        }
        for (int round = 0; round < 40; round++) {
          transferOnce(src, dir.resolve("dst"));
        }
        LOG.info("transfer path warmed up in {} ms", (System.nanoTime() - t0) / 1_000_000);
      } catch (IOException | RuntimeException e) {
        LOG.warn("warm-up failed (harmless; the first migration is slower): {}", e.getMessage());
      } finally {
        Files2.deleteTree(dir);
      }
    }, "ferry-warmup");
    t.setDaemon(true);
    t.setPriority(Thread.MIN_PRIORITY);
    t.start();
  }

  private static void transferOnce(Path src, Path dst) throws IOException {
    PipedOutputStream toReceiver = new PipedOutputStream();
    PipedInputStream receiverIn = new PipedInputStream(toReceiver, 1 << 16);
    PipedOutputStream toSender = new PipedOutputStream();
    PipedInputStream senderIn = new PipedInputStream(toSender, 1 << 10);
    CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
      try (receiverIn; toSender) {
        return new ImageReceiver((id, incremental) -> dst).receive(receiverIn, toSender, new TransferProgress(), b -> {});
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    try (toReceiver; senderIn) {
      new ImageSender(false).send("warmup", List.of(new TransferSource(src, "images")), toReceiver, senderIn,
          new TransferProgress());
    }
    received.join();
  }
}
