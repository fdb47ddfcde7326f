package dev.ferry.agent;

import dev.ferry.api.Json;
import dev.ferry.runtime.CriuInventory;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.OciConfig;
import dev.ferry.transfer.ImageReceiver;
import dev.ferry.transfer.ImageSender;
import dev.ferry.transfer.TransferProgress;
import dev.ferry.transfer.TransferSource;
import java.io.IOException;
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
 * of it interpreted code, all of it with the pod frozen. Compiled, it takes a few ms. The same
 * for the restore's own work on the images and bundle (the inventory edit, the bundle's
 * config.json, runc's state files): loading their classes cost the first restore ~30-60 ms;
 * for the post-copy page path ({@link dev.ferry.transfer.memory.PagePathWarmup}); and for a
 * pod's tmpfs mounts named external at the dump and made again at the restore ({@link
 * dev.ferry.runtime.PodTmpfs#warmUp}).
 */
final class Warmup {
  private static final Logger LOG = LoggerFactory.getLogger(Warmup.class);

  private static volatile boolean over;

  private Warmup() {}

  /** Whether the warm-up has ended (done, or failed). */
  static boolean over() {
    return over;
  }

  static void inBackground(Path stateDir, dev.ferry.transfer.PeerTls tls) {
    Thread t = new Thread(() -> {
      long t0 = System.nanoTime();
      Path dir = stateDir.resolve("warmup");
      try {
        dev.ferry.runtime.LinkSwitch.warmUp();
        Path src = Files.createDirectories(dir.resolve("src"));
        Random rnd = new Random(1);
        for (int i = 0; i < 32; i++) {
          byte[] b = new byte[8192 * (1 + i % 8)];
          rnd.nextBytes(b);
          Files.write(src.resolve("f" + i + ".img"), b);
        }
        for (int round = 0; round < 40; round++) {
          socketTransferOnce(dev.ferry.transfer.PeerTls.PLAIN, src, dir.resolve("dst"));
        }
        if (tls.secure()) {
          // JSSE's cipher code is compiled only after megabytes went through it: a frozen round
          // moved ~10 MB in ~200-380 ms instead of ~70-90 ms on agents not warmed so; BoringSSL's
          // cipher is native, the code that drives it is not
          byte[] big = new byte[4 << 20];
          rnd.nextBytes(big);
          Files.write(src.resolve("big.img"), big);
          for (int round = 0; round < 16; round++) {
            socketTransferOnce(tls, src, dir.resolve("dst"));
          }
        }
        Path restore = Files.createDirectories(dir.resolve("restore"));
        for (int round = 0; round < 20; round++) {
          restoreFilesOnce(restore);
        }
        for (int round = 0; round < 12; round++) {
          dev.ferry.transfer.memory.PagePathWarmup.exercise(Files.createDirectories(dir.resolve("pages-" + round)), 600);
        }
        dev.ferry.runtime.PodTmpfs.warmUp(dir.resolve("tmpfs"));
        LOG.info("transfer path warmed up in {} ms", (System.nanoTime() - t0) / 1_000_000);
      } catch (Exception e) {
        LOG.warn("warm-up failed (harmless; the first migration is slower): {}", e.getMessage());
      } finally {
        Files2.deleteTree(dir);
        over = true;
      }
    }, "ferry-warmup");
    t.setDaemon(true);
    t.setPriority(Thread.MIN_PRIORITY);
    t.start();
  }

  /** What the target does to the received files before {@code runc restore}, on stand-ins. */
  private static void restoreFilesOnce(Path dir) throws IOException {
    // an inventory as CRIU writes it: magic, length, inventory_entry {img_version 2, network_lock_method 0}
    byte[] entry = {0x08, 0x02, 0x58, 0x00};
    Files.write(dir.resolve("inventory.img"), java.nio.ByteBuffer.allocate(8 + entry.length)
        .order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(CriuInventory.INVENTORY_MAGIC).putInt(entry.length).put(entry).array());
    CriuInventory.skipNetworkLock(dir);
    Files.writeString(dir.resolve("config.json"), "{\"process\":{\"args\":[\"x\"]},\"root\":{\"path\":\"rootfs\"},"
        + "\"linux\":{\"namespaces\":[{\"type\":\"pid\"}]}}");
    OciConfig.load(dir).namespaces("/run/netns/x", "/proc/1/ns/ipc", "/proc/1/ns/uts").hostname(null)
        .cgroupsPath("/ferry/x").resources(1 << 20, 2).save();
    Json.read("{\"init_process_pid\":1,\"init_process_start\":1,\"cgroup_paths\":{\"freezer\":\"/x\"}}",
        com.fasterxml.jackson.databind.JsonNode.class).path("cgroup_paths").path("freezer").asText();
  }

  /**
   * One transfer over loopback sockets, as agents transfer: a plain socket takes the channel path
   * (direct buffers), TLS through BoringSSL its own channel (TlsChannel, direct buffers too), TLS
   * through JSSE the stream path; with TLS, the handshake too.
   */
  private static void socketTransferOnce(dev.ferry.transfer.PeerTls tls, Path src, Path dst) throws IOException {
    try (java.net.ServerSocket server = tls.listen("127.0.0.1", 0, 1)) {
      CompletableFuture<String> received = CompletableFuture.supplyAsync(() -> {
        try (java.net.Socket s = server.accept()) {
          return new ImageReceiver((id, incremental) -> dst).receive(s, new byte[0], s, new TransferProgress(), b -> {});
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      try (java.net.Socket c = tls.connect("127.0.0.1:" + server.getLocalPort(), 5000)) {
        new ImageSender(false).send("warmup", List.of(new TransferSource(src, "images")), c, new TransferProgress());
      }
      received.join();
    }
  }
}
