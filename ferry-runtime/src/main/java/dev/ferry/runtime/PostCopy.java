package dev.ferry.runtime;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Post-copy with CRIU's lazy pages over userfaultfd: the source dumps everything but the
 * memory pages and keeps its frozen tree to serve them; the target restores at once and a
 * page client ({@code criu lazy-pages}) fetches pages on demand and in the background.
 *
 * <p>Two things learned on this kernel: the dump side needs {@code fs.pipe-max-size} of at
 * least 4 MiB (CRIU asks for a 3.2 MiB pipe; without CAP_SYS_RESOURCE the default 1 MiB cap
 * makes it fail with "page-pipe: splice: -1: Bad file descriptor"); and the dump side's exit
 * code does not prove the pages arrived (a page client killed half-way leaves it "finished
 * successfully" and the restored memory zero-filled), so success is read from the page
 * client's own count.
 */
public final class PostCopy {
  private static final Path PIPE_MAX = Path.of("/proc/sys/fs/pipe-max-size");
  private static final long PIPE_NEEDED = 4 << 20;
  private static final Pattern TRANSFERRED = Pattern.compile("UFFD transferred pages: \\((\\d+)/(\\d+)\\)");

  private PostCopy() {}

  /** Raises fs.pipe-max-size to what CRIU's page server needs; returns the value before. */
  public static long ensurePipeSize() {
    try {
      long now = Long.parseLong(Files.readString(PIPE_MAX).strip());
      if (now < PIPE_NEEDED) {
        Files.writeString(PIPE_MAX, Long.toString(PIPE_NEEDED));
      }
      return now;
    } catch (IOException e) {
      throw new IllegalStateException("cannot raise fs.pipe-max-size to " + PIPE_NEEDED + " (post-copy needs it): " + e.getMessage());
    }
  }

  /** A lazy dump under way on the source: the tree is frozen and serves its pages until done. */
  public static final class LazyDump {
    private final Process criu;
    private final Path workDir;
    private final String listenIp;
    private final int port;
    private final long frozenAtNanos;

    private LazyDump(Process criu, Path workDir, String listenIp, int port, long frozenAtNanos) {
      this.criu = criu;
      this.workDir = workDir;
      this.listenIp = listenIp;
      this.port = port;
      this.frozenAtNanos = frozenAtNanos;
    }

    /** When the tree was frozen for this dump ({@link System#nanoTime}): what came before did not stop the pod. */
    public long frozenAtNanos() {
      return frozenAtNanos;
    }

    /** Where the target's page client connects. */
    public String pageServer() {
      return listenIp + ":" + port;
    }

    public boolean alive() {
      return criu.isAlive();
    }

    /** Waits for the dump to finish (all pages served, or failed); returns its exit code. */
    public int awaitExit(Duration timeout) throws InterruptedException {
      if (!criu.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException("lazy dump still serving pages after " + timeout.toSeconds() + " s");
      }
      return criu.exitValue();
    }

    /**
     * Gives up before any page client connected. A request CRIU's page server does not know
     * makes the lazy dump fail, and a failed dump thaws the tree where it was, TCP connections
     * included. (A connection that just closes would not do: CRIU takes that for "all pages
     * sent" and destroys the tree.) Returns the dump's exit code (non-zero is expected).
     */
    public int cancel() throws InterruptedException {
      if (criu.isAlive()) {
        cancelAt(listenIp, port);
      }
      if (!criu.waitFor(30, TimeUnit.SECONDS)) {
        criu.destroyForcibly();
        criu.waitFor(10, TimeUnit.SECONDS);
      }
      return criu.exitValue();
    }

    public String explain() {
      return CriuLog.explain(workDir.resolve("dump.log"));
    }

    /**
     * Ends a lazy dump whose pages were taken by other means (Ferry's page pump reads them
     * from the frozen tree): connects as a page client and closes the session at once, which
     * CRIU takes for "all pages sent"; it then kills the frozen tree. Returns the dump's exit code.
     */
    public int end() throws InterruptedException {
      if (criu.isAlive()) {
        try (Socket s = new Socket()) {
          s.connect(new InetSocketAddress(listenIp, port), 5000);
          s.setSoTimeout(30_000);
          // struct page_server_iov {u32 cmd; u32 pad; u64 nr_pages; u64 vaddr; u64 dst_id;}: PS_IOV_CLOSE
          java.nio.ByteBuffer close = java.nio.ByteBuffer.allocate(32).order(java.nio.ByteOrder.LITTLE_ENDIAN);
          close.putInt(0x1023);
          s.getOutputStream().write(close.array());
          s.getOutputStream().flush();
          s.getInputStream().readNBytes(4); // CRIU's status
        } catch (IOException e) {
          // not listening any more: the dump is ending anyway
        }
      }
      if (!criu.waitFor(60, TimeUnit.SECONDS)) {
        criu.destroyForcibly();
        criu.waitFor(10, TimeUnit.SECONDS);
      }
      return criu.exitValue();
    }
  }

  /**
   * Makes the lazy dump whose page server listens on {@code ip:port} give up and thaw its tree
   * (see {@link LazyDump#cancel}); usable without the handle, e.g. by an agent that restarted
   * while its lazy dump kept the pod frozen.
   *
   * @return false when nothing listens there (the dump has ended)
   */
  public static boolean cancelAt(String ip, int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(ip, port), 2000);
      // struct page_server_iov {u32 cmd; u32 pad; u64 nr_pages; u64 vaddr; u64 dst_id;}, little-endian
      java.nio.ByteBuffer bogus = java.nio.ByteBuffer.allocate(32).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      bogus.putInt(0x7777);
      s.getOutputStream().write(bogus.array());
      s.getOutputStream().flush();
      // closing right after it is what makes CRIU give up (found by trying)
      return true;
    } catch (IOException e) {
      return false; // not listening any more: the dump is ending anyway
    }
  }

  /**
   * The FIFO a lazy dump reports "images written, page server ready" on, made in {@code
   * workDir} ahead of the freeze: Java cannot hand a child an extra descriptor, so the dump's
   * descriptor 3 is opened on this FIFO ({@link #startDump}).
   */
  public static Path statusFifo(Path workDir) throws IOException {
    Files.createDirectories(workDir);
    Path fifo = workDir.resolve("status.fifo");
    Files.deleteIfExists(fifo);
    Exec.checked("mkfifo", "-m", "600", fifo.toString());
    return fifo;
  }

  /**
   * Runs {@code command}, a lazy dump of container {@code id} that reports readiness on
   * descriptor 3 ({@code --status-fd 3}), with {@code fifo} ({@link #statusFifo}) as that
   * descriptor; returns once CRIU has written the images (all but the pages) and its page
   * server listens on {@code listenIp:port}. {@code frozenAtNanos}: when the caller froze the tree.
   */
  public static LazyDump startDump(List<String> command, Map<String, String> env, String id, Path workDir, Path fifo,
      String listenIp, int port, long frozenAtNanos, Duration timeout) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(List.of("sh", "-c", "exec \"$@\" 3>\"$FERRY_STATUS_FIFO\"", "sh"));
    cmd.addAll(command);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    pb.environment().put("FERRY_STATUS_FIFO", fifo.toString());
    pb.redirectInput(new File("/dev/null"));
    pb.redirectOutput(workDir.resolve(DUMP_OUTPUT).toFile());
    pb.redirectErrorStream(true);
    Process p = pb.start();
    CompletableFuture<Integer> ready = CompletableFuture.supplyAsync(() -> {
      try (InputStream in = new FileInputStream(fifo.toFile())) {
        return in.read();
      } catch (IOException e) {
        return -1;
      }
    });
    int b;
    try {
      b = ready.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      p.destroyForcibly();
      throw new IOException("lazy dump of " + id + " not ready after " + timeout.toSeconds() + " s");
    }
    if (b != 0) {
      p.waitFor(30, TimeUnit.SECONDS);
      String said = Files.readString(workDir.resolve(DUMP_OUTPUT)).strip();
      throw new CheckpointException("lazy checkpoint of " + id,
          new Exec.Result(cmd, p.isAlive() ? -1 : p.exitValue(), "", said), CriuLog.explain(workDir.resolve("dump.log")));
    }
    return new LazyDump(p, workDir, listenIp, port, frozenAtNanos);
  }

  /** What the lazy dump's process printed, in its work directory. */
  static final String DUMP_OUTPUT = "dump-output.log";

  /** The target's page client: fetches pages from the source's page server into the restored tree. */
  public static final class PageClient {
    private final Process criu;
    private final Path workDir;
    private final long started = System.nanoTime();

    private PageClient(Process criu, Path workDir) {
      this.criu = criu;
      this.workDir = workDir;
    }

    public boolean alive() {
      return criu.isAlive();
    }

    /**
     * Kills the page client so that its source's lazy dump fails and hands its tree back: its
     * connection ends with a reset ({@link ForeignSockets#resetOnClose}). Killed plainly, it
     * would close in order, which CRIU's page server takes for "every page fetched": the source
     * would end its dump and kill the tree a rollback is about to resume.
     */
    public void kill() {
      if (criu.isAlive()) {
        try {
          ForeignSockets.resetOnClose(criu.pid());
        } catch (IOException | RuntimeException | LinkageError e) {
          org.slf4j.LoggerFactory.getLogger(PostCopy.class).warn(
              "page client {}: its connection may close in order ({}); the source's dump could end", criu.pid(),
              e.getMessage());
        }
      }
      criu.destroyForcibly();
    }

    /** How long it has run, ms. */
    public long elapsedMs() {
      return (System.nanoTime() - started) / 1_000_000;
    }

    /**
     * Waits until the page client is done; returns the pages it fetched. Fails if it exited
     * with an error (it does when it is killed or loses its source). It may legitimately fetch
     * fewer pages than the dump had: pages the restored process unmapped or gave back in the
     * meantime (e.g. an allocator's madvise) are dropped, not fetched.
     */
    public long awaitAllPages(Duration timeout) throws InterruptedException, IOException {
      if (!criu.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IOException("pages still arriving after " + timeout.toSeconds() + " s");
      }
      Path log = workDir.resolve("lazy.log");
      String text = tail(log, 1 << 20); // -v4 logs every fault: the count is in its last lines
      Matcher m = TRANSFERRED.matcher(text);
      long got = -1;
      long total = -1;
      while (m.find()) {
        got = Long.parseLong(m.group(1));
        total = Long.parseLong(m.group(2));
      }
      if (criu.exitValue() != 0 || got < 0) {
        throw new IOException("post-copy page transfer incomplete (exit " + criu.exitValue() + ", pages " + got + "/" + total
            + "): " + CriuLog.explain(log));
      }
      return total;
    }
  }

  /** The last {@code bytes} of a file, or "" if there is none. */
  static String tail(Path file, int bytes) throws IOException {
    if (!Files.exists(file)) {
      return "";
    }
    try (var f = new java.io.RandomAccessFile(file.toFile(), "r")) {
      long start = Math.max(0, f.length() - bytes);
      byte[] b = new byte[(int) (f.length() - start)];
      f.seek(start);
      f.readFully(b);
      return new String(b, java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  /**
   * After an agent restart: waits for the {@code criu lazy-pages} daemons a previous agent
   * started for work directories under {@code workRoot} (they outlive it) to finish filling
   * memory. Returns how long it waited in ms, or -1 if none was running.
   */
  public static long awaitDaemonsUnder(Path workRoot, Duration timeout) throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    boolean found = false;
    while (System.nanoTime() - t0 < timeout.toNanos()) {
      if (daemonsUnder(workRoot).isEmpty()) {
        return found ? (System.nanoTime() - t0) / 1_000_000 : -1;
      }
      found = true;
      Thread.sleep(200);
    }
    throw new IOException("CRIU's page daemon under " + workRoot + " still running after " + timeout.toSeconds() + " s");
  }

  /**
   * Kills every {@code criu lazy-pages} daemon working under {@code workRoot}, with a reset on
   * its connections: also one whose starter died or was killed (it lives on, orphaned, waiting
   * for a restore that never comes). Returns how many.
   */
  public static int killDaemonsUnder(Path workRoot) {
    List<ProcessHandle> daemons = daemonsUnder(workRoot);
    for (ProcessHandle d : daemons) {
      try {
        ForeignSockets.resetOnClose(d.pid()); // as PageClient#kill: a FIN would end the source's dump as done
      } catch (IOException | RuntimeException | LinkageError e) {
        // gone meanwhile, or no sockets to set
      }
      d.destroyForcibly();
    }
    return daemons.size();
  }

  private static List<ProcessHandle> daemonsUnder(Path workRoot) {
    String dir = workRoot.toString();
    return Procs.withCommandLineContaining("lazy-pages", dir);
  }


  /**
   * Starts the page client and waits for its socket, which the lazy restore connects to. With
   * a {@code pageServer} it fetches pages from there (post-copy); without, from the local
   * images, which takes the filling of memory out of the frozen window: the restored tree runs
   * as soon as it is rebuilt, and its pages are copied in behind it (faults first).
   */
  public static PageClient startPageClient(String criu, Map<String, String> env, Path imageDir, Path workDir,
      String pageServer, Duration timeout) throws IOException, InterruptedException {
    Files.createDirectories(workDir);
    List<String> cmd = new ArrayList<>(List.of(criu, "lazy-pages"));
    if (pageServer != null) {
      String[] hp = pageServer.split(":");
      cmd.addAll(List.of("--page-server", "--address", hp[0], "--port", hp[1]));
    }
    // -v4: the count of pages copied, which proves completion, is a debug line
    cmd.addAll(List.of("-D", imageDir.toString(), "-W", workDir.toString(), "-o", "lazy.log", "-v4"));
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().putAll(env);
    pb.redirectInput(new File("/dev/null"));
    pb.redirectOutput(workDir.resolve("lazy-pages.out").toFile());
    pb.redirectErrorStream(true);
    Process p = pb.start();
    Path socket = workDir.resolve("lazy-pages.socket");
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!Files.exists(socket)) {
      if (!p.isAlive()) {
        throw new IOException("criu lazy-pages exited at start: " + CriuLog.explain(workDir.resolve("lazy.log")));
      }
      if (System.nanoTime() > deadline) {
        p.destroyForcibly();
        throw new IOException("criu lazy-pages not ready after " + timeout.toSeconds() + " s");
      }
      Thread.sleep(5);
    }
    return new PageClient(p, workDir);
  }
}
