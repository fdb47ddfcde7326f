package dev.ferry.agent;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.PodIdentity;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.LinkSwitch;
import dev.ferry.runtime.PodNetwork;
import dev.ferry.transfer.PeerTls;
import dev.ferry.runtime.PostCopy;
import dev.ferry.runtime.ProcessMemory;
import dev.ferry.runtime.Procs;
import dev.ferry.transfer.ImageSender;
import dev.ferry.transfer.TransferProgress;
import dev.ferry.transfer.TransferSource;
import dev.ferry.transfer.memory.CriuPagemap;
import dev.ferry.transfer.memory.PagePump;
import dev.ferry.transfer.memory.SourcePages;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source side of a migration. Each step is idempotent and has its undo: {@link #resume}
 * puts the pod back exactly as it ran, whatever step was reached.
 */
public final class SourceRole {
  private static final Logger LOG = LoggerFactory.getLogger(SourceRole.class);
  private final PodManager pods;
  private final Path migrationsDir;
  private final Map<String, TransferProgress> transfers = new ConcurrentHashMap<>();
  /** What the target holds from a migration's earlier round, to send only what changed since. */
  private final Map<String, Map<String, ImageSender.FileStamp>> sent = new ConcurrentHashMap<>();
  /**
   * By migration: the files the pod's processes had mapped shared and writable when it was
   * checkpointed, which the frozen round sends whatever their times say ({@link
   * dev.ferry.runtime.SharedMappings}).
   */
  private final Map<String, java.util.Set<Object>> mappedForWriting = new ConcurrentHashMap<>();
  /** The connections of each migration's transfer under way (one per stream), which a cancel cuts. */
  private final Map<String, Set<Socket>> sockets = new ConcurrentHashMap<>();
  private final dev.ferry.transfer.RateLimiter hostCap;
  /** Migrations whose transfer was cancelled: it must not resume. */
  private final java.util.Set<String> cancelled = ConcurrentHashMap.newKeySet();
  /** A transfer with no progress for this long is given up (a cut link, a hung peer). */
  static final int STALL_MS = 15_000;
  /**
   * How long a pump whose connection broke keeps connecting again: within the target's wait
   * for it ({@code TargetRole.PUMP_RECONNECT_MS}).
   */
  static final int PUMP_RETRY_MS = 100_000;
  /**
   * A transfer's connection that moves nothing for this long is cut, and the transfer resumed
   * on a new one: a resume costs little, so this can be short.
   */
  static final int TRANSFER_STALL_MS = 5_000;
  /** How long after its connection broke a transfer keeps trying to resume before it fails. */
  static final long RESUME_WINDOW_MS = 10_000;

  /** Memory pre-copy state (what the target holds), by migration and container. */
  private final Map<String, Map<String, SourcePages>> precopies = new ConcurrentHashMap<>();

  /** Where a lazy dump's page server listens and which processes it froze (JSON, per migration). */
  private static final String LAZY_DUMP_FILE = "lazy-dump.json";
  /** Where the page pump sends and what (the lazy ranges), for an agent that restarts mid-way. */
  private static final String PUMP_FILE = "pump.json";
  /** Written once the target confirmed every page of the pump: a restarted agent must not pump again. */
  private static final String PUMP_DONE_FILE = "pump-done";

  /** Pid inside the container to pid on this host, of each frozen process, by migration. */
  private final Map<String, Map<Long, Long>> frozenPids = new ConcurrentHashMap<>();
  /** Page pumps moving frozen memory to a target, by migration, and how they ended. */
  private final Map<String, PagePump> pumps = new ConcurrentHashMap<>();
  private final Map<String, java.util.concurrent.CompletableFuture<PagePump.Stats>> pumping = new ConcurrentHashMap<>();

  /** Lazy dumps serving pages to a target (post-copy), by migration. */
  private final Map<String, PostCopy.LazyDump> lazyDumps = new ConcurrentHashMap<>();
  /**
   * Where the target's page client dials each lazy dump's page server: CRIU's own address, or
   * with TLS this host's relay to it (CRIU then listens on loopback only).
   */
  private final Map<String, String> pageServers = new ConcurrentHashMap<>();
  /** This host's page daemon, which runs the TLS relays to CRIU's page servers (they outlive this agent). */
  private final PageDaemonClient pageDaemon;
  private final String listenIp;

  /** @param listenIp this host's address on the lab network, where page servers listen */
  /** @param tls how this agent connects to other agents' data ports */
  private final PeerTls tls;

  /** Connections each transfer to a target uses (see {@link dev.ferry.transfer.ParallelSender}). */
  private final int streams;

  /** Connections each transfer to a target uses. */
  public int streams() {
    return streams;
  }

  /**
   * @param hostCap cap on all this host's transfers together (its link); null for none
   * @param streams connections per transfer, at least 1
   */
  public SourceRole(PodManager pods, Path stateDir, String listenIp, PeerTls tls, dev.ferry.transfer.RateLimiter hostCap,
      int streams) {
    this.pods = pods;
    this.hostCap = hostCap;
    this.streams = streams;
    this.tls = tls;
    this.migrationsDir = stateDir.resolve("migrations");
    this.pageDaemon = new PageDaemonClient(stateDir);
    this.listenIp = listenIp;
  }

  private Path images(String migrationId, String container) {
    return migrationsDir.resolve(migrationId).resolve("images").resolve(container);
  }

  private Path work(String migrationId, String step, String container) {
    return migrationsDir.resolve(migrationId).resolve("work-" + step).resolve(container);
  }

  /** Freezes and checkpoints the pod's app containers; the sandbox keeps the network. */
  public Map<String, Object> checkpoint(String migrationId, String podName) throws Exception {
    return inFlight(migrationId, () -> checkpointNow(migrationId, podName));
  }

  private Map<String, Object> checkpointNow(String migrationId, String podName) {
    LocalPod pod;
    synchronized (pods) {
      pod = pods.store().get(podName);
      if ("checkpointed".equals(pod.state()) && migrationId.equals(pod.migrationId())) {
        return Map.of("already", true);
      }
      if (!"running".equals(pod.state()) || pod.migrationId() != null) {
        throw ApiException.conflict("pod '" + podName + "' is " + pod.state()
            + (pod.migrationId() != null ? " in migration " + pod.migrationId() : "") + ", not running: cannot checkpoint");
      }
      pods.store().save(pod.withState("checkpointing", migrationId));
    }
    long t0 = System.nanoTime();
    long bytes = 0;
    if (pod.spec().runsc()) {
      cutOffAndDrainRunsc(pod);
    }
    rememberFilesMappedForWriting(migrationId, pod);
    for (ContainerSpec c : pod.spec().containers()) {
      Path img = images(migrationId, c.name());
      pods.runtimeFor(pod.spec()).checkpoint(pods.containerId(podName, c.name()), img, work(migrationId, "dump", c.name()));
      bytes += sizeOf(img);
    }
    pods.store().save(pod.withState("checkpointed", migrationId));
    long ms = (System.nanoTime() - t0) / 1_000_000;
    LOG.info("checkpointed pod {} in {} ms, {} bytes of images", podName, ms, bytes);
    return Map.of("checkpointMs", ms, "imageBytes", bytes);
  }

  /**
   * Just before the freeze (outside the frozen window: ~1 ms of /proc reads): a mapping made in
   * the instant between here and the freeze stamps the file at its first write anyway.
   */
  private void rememberFilesMappedForWriting(String migrationId, LocalPod pod) {
    java.util.Set<Object> keys = new java.util.HashSet<>();
    for (ContainerSpec c : pod.spec().containers()) {
      keys.addAll(pods.runtimeFor(pod.spec()).filesMappedForWriting(pods.containerId(pod.name(), c.name())));
    }
    mappedForWriting.put(migrationId, keys);
    if (!keys.isEmpty()) {
      LOG.info("pod {}: {} file(s) mapped shared and writable, sent again in the frozen round whatever their times",
          pod.name(), keys.size());
    }
  }

  /**
   * Before a runsc checkpoint: runsc cannot save an established TCP connection, and a restored
   * app left holding one that the save reset may spin on it. So the pod is cut off from the
   * network at its bridge port (no client can connect again; eth0 itself stays up, which
   * netstack needs), its drain command closes its clients' connections inside the sandbox, and
   * the sandbox's own /proc/net/tcp must then list none. Otherwise the checkpoint is refused
   * and the undo ({@link #resume}) reconnects the pod as it was. Clients see their connection
   * end and reconnect to the same IP, on the target once it runs.
   */
  private void cutOffAndDrainRunsc(LocalPod pod) {
    String podName = pod.name();
    try (LinkSwitch port = pods.network(podName).hostLinkSwitch()) {
      port.down();
    }
    dev.ferry.runtime.RunscRuntime runsc = pods.runsc();
    String cid = pods.containerId(podName, pod.spec().containers().get(0).name());
    if (!pod.spec().drain().isEmpty()) {
      dev.ferry.runtime.Exec.Result r = runsc.exec(cid, pod.spec().drain(), java.time.Duration.ofSeconds(20));
      if (!r.ok()) {
        throw ApiException.conflict("pod '" + podName + "': its drain command " + pod.spec().drain() + " failed (exit "
            + r.exitCode() + "): " + (r.stderr() + r.stdout()).strip() + "; not checkpointed, the pod runs on");
      }
    }
    List<String> open = runsc.tcpConnections(cid);
    if (!open.isEmpty()) {
      throw ApiException.conflict("pod '" + podName + "' still has " + open.size() + " TCP connection(s) open " + open
          + (pod.spec().drain().isEmpty() ? " and no drain command" : " after its drain command")
          + ": runsc cannot checkpoint a connected sandbox (\"endpoint cannot be saved in connected state\"); give the"
          + " pod a drain command that closes its clients' connections (ferry run --drain); not checkpointed, the pod"
          + " runs on");
    }
    LOG.info("pod {} cut off at its bridge port and drained: no TCP connection left", podName);
  }

  /**
   * Post-copy: freezes the pod and dumps all but its memory pages; the frozen tree stays and
   * serves the pages to the target's page client until every one has gone (or to the page pump).
   *
   * @param servesTarget whether the target's CRIU page client will dial this dump's page server
   *     (post-copy); false where Ferry's page pump takes the pages from the frozen tree (pre-copy,
   *     hybrid): then, with TLS, no relay is set up for it
   * @param bandwidth the migration's cap (bytes per second, 0 for none): with it or a host cap,
   *     CRIU's page server is reached through this host's relay, which holds the pages to them
   */
  public Map<String, Object> checkpointLazy(String migrationId, String podName, boolean servesTarget, long bandwidth)
      throws Exception {
    return inFlight(migrationId, () -> checkpointLazyNow(migrationId, podName, servesTarget, bandwidth));
  }

  /** Runs a checkpoint of {@code migrationId}, registered in {@link #checkpointing} while it runs. */
  private Map<String, Object> inFlight(String migrationId, java.util.concurrent.Callable<Map<String, Object>> dump)
      throws Exception {
    java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
    checkpointing.put(migrationId, done);
    try {
      return dump.call();
    } finally {
      checkpointing.remove(migrationId, done);
      done.complete(null);
    }
  }

  /**
   * Checkpoints in flight, by migration: an undo arriving meanwhile (the coordinator died
   * during the dump, and its recovery rolls back) waits for the dump to be in place, which it
   * can then cancel, rather than find nothing and leave the dump holding the tree.
   */
  private final Map<String, java.util.concurrent.CompletableFuture<Void>> checkpointing = new ConcurrentHashMap<>();

  private void awaitCheckpoint(String migrationId) {
    var f = checkpointing.get(migrationId);
    if (f != null) {
      LOG.info("waiting for the checkpoint of {} in flight before undoing it", migrationId);
      try {
        f.get(120, java.util.concurrent.TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warn("the checkpoint of {} still runs: {}", migrationId, e.toString());
      }
    }
  }

  private Map<String, Object> checkpointLazyNow(String migrationId, String podName, boolean servesTarget,
      long bandwidth) throws Exception {
    long t0 = System.nanoTime();
    LocalPod pod;
    synchronized (pods) {
      pod = pods.store().get(podName);
      PostCopy.LazyDump running = lazyDumps.get(migrationId);
      if ("checkpointed".equals(pod.state()) && migrationId.equals(pod.migrationId()) && running != null) {
        return Map.of("already", true, "pageServer", pageServers.getOrDefault(migrationId, running.pageServer()));
      }
      if (!"running".equals(pod.state()) || pod.migrationId() != null) {
        throw ApiException.conflict("pod '" + podName + "' is " + pod.state() + ", not running: cannot checkpoint");
      }
      if (pod.spec().containers().size() != 1) {
        throw ApiException.badRequest("post-copy moves pods with one app container for now; pod '" + podName + "' has "
            + pod.spec().containers().size() + "; use --strategy cold");
      }
      pods.store().save(pod.withState("checkpointing", migrationId));
    }
    ContainerSpec c = pod.spec().containers().get(0);
    frozenPids.put(migrationId, pidsOf(pods.runtime().state(pods.containerId(podName, c.name())).pid()));
    rememberFilesMappedForWriting(migrationId, pod);
    // with TLS, CRIU's page server (plain TCP) is reached through this host's relay only (or,
    // where the pump takes the pages, by this agent alone, to end the dump); so it is in clear
    // under a bandwidth cap, which the relay holds its pages to
    boolean relayed = servesTarget && (tls.secure() || bandwidth > 0 || hostCap != null);
    String criuIp = tls.secure() || relayed ? "127.0.0.1" : listenIp;
    int port = freePort(criuIp);
    // written before the dump starts: an agent killed while CRIU dumps leaves a dump that will
    // hold the tree frozen; the next agent must know where to cancel it (thawLazyDumpOfEarlierAgent)
    dev.ferry.api.Json.writeFile(migrationsDir.resolve(migrationId).resolve(LAZY_DUMP_FILE),
        Map.of("pageServer", criuIp + ":" + port, "pids", frozenPids.get(migrationId)));
    if (relayed) {
      // ready before the freeze: it dials CRIU only once a peer (of the lab's CA, with TLS) connects
      try {
        pageServers.put(migrationId, pageDaemon.relayFromPeers(migrationId, listenIp, criuIp + ":" + port, bandwidth));
      } catch (IOException e) {
        throw new IllegalStateException("cannot relay the page server of pod " + podName
            + (tls.secure() ? " over TLS: " : ": ") + e.getMessage(), e);
      }
    } else {
      pageServers.put(migrationId, criuIp + ":" + port);
    }
    PostCopy.LazyDump dump = pods.runtime().checkpointLazy(pods.containerId(podName, c.name()), images(migrationId, c.name()),
        work(migrationId, "dump", c.name()), criuIp, port);
    long frozenAt = dump.frozenAtNanos();
    Laps laps = new Laps();
    laps.startAt(frozenAt); // before it the pod still ran: its pids, the relay, CRIU's command line
    laps.lap("dump"); // CRIU from the freeze until its page server listens
    lazyDumps.put(migrationId, dump);
    pods.store().save(pod.withState("checkpointed", migrationId));
    laps.lap("record");
    // the frozen part only: the coordinator counts the pod frozen from its call plus beforeFreezeMs
    long ms = (System.nanoTime() - frozenAt) / 1_000_000;
    long beforeFreeze = (frozenAt - t0) / 1_000_000;
    String pageServer = pageServers.get(migrationId);
    LOG.info("lazy dump of pod {} ready {} ms after the freeze ({} ms before it), serving pages on {}: {}", podName, ms,
        beforeFreeze, pageServer, laps.asMap());
    return Map.of("checkpointMs", ms, "beforeFreezeMs", beforeFreeze, "imageBytes", sizeOf(images(migrationId, c.name())),
        "pageServer", pageServer, "laps", laps.asMap());
  }

  /** Fault injection for tests, at the start of the frozen round's transfer (the pod is frozen). */
  private static void injectFaults(List<String> faults) {
    if (faults.contains("source-agent-crash-in-transfer")) {
      LOG.error("injected fault: source agent crashing with the pod frozen");
      Runtime.getRuntime().halt(137);
    }
    if (faults.contains("stall-frozen-transfer")) {
      LOG.warn("injected fault: frozen transfer held back 3 s");
      try {
        Thread.sleep(3000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Host pid by pid in the pod's namespace, of {@code init} and its descendants (pump lanes share it). */
  private static Map<Long, Long> pidsOf(long init) {
    Map<Long, Long> m = new ConcurrentHashMap<>();
    try {
      for (long pid : ProcessMemory.processesLike(init)) {
        long nsPid = ProcessMemory.nsPid(pid);
        if (nsPid > 0) {
          m.put(nsPid, pid);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list the processes of pid " + init, e);
    }
    return m;
  }

  /**
   * After a lazy dump: streams the frozen pod's memory to the target's page store at
   * {@code pumpAddress}, sending only pages changed since the pre-copy rounds. With
   * {@code wait} returns when the target confirmed every page; otherwise at once, the pages
   * following the restored pod (hybrid). With {@code hold} only pages the target asks for are
   * sent until a later call without it (the restore needs the CPUs).
   */
  public Map<String, Object> pump(String migrationId, String podName, String pumpAddress, boolean wait, boolean hold,
      long bandwidth) throws Exception {
    if (!hold) {
      releasePump(migrationId);
    }
    LocalPod pod = pods.store().get(podName);
    requireMigration(pod, migrationId);
    java.util.concurrent.CompletableFuture<PagePump.Stats> running = pumping.get(migrationId);
    if (running == null) { // (a pump started again by a restarted agent has no lazy dump of its own)
      PostCopy.LazyDump dump = lazyDumps.get(migrationId);
      Map<Long, Long> pids = frozenPids.get(migrationId);
      if (dump == null || pids == null || !dump.alive()) {
        throw ApiException.conflict("pod '" + podName + "' has no lazy dump serving its memory in migration " + migrationId);
      }
      ContainerSpec c = pod.spec().containers().get(0);
      List<CriuPagemap.LazyRange> ranges = CriuPagemap.lazyRanges(images(migrationId, c.name()));
      SourcePages held = precopies.getOrDefault(migrationId, Map.of()).get(c.name());
      // (a pump started held is hybrid's: the restored pod will fault on what it sends)
      running = startPump(migrationId, pod, ranges, held, pids, pumpAddress, bandwidth, hold, hold);
      // written down for an agent that restarts while the pages are on their way (resumePumps),
      // off the frozen window's path
      Path pumpFile = migrationsDir.resolve(migrationId).resolve(PUMP_FILE);
      java.util.concurrent.CompletableFuture.runAsync(() -> dev.ferry.api.Json.writeFile(pumpFile, Map.of("target",
          pumpAddress, "bandwidth", bandwidth, "ranges", ranges.stream().map(r -> List.of(r.pid(), r.vaddr(), r.nrPages())).toList())));
    }
    if (!wait) {
      return Map.of("started", true);
    }
    PagePump.Stats st;
    try {
      st = running.join();
    } catch (java.util.concurrent.CompletionException e) {
      pumping.remove(migrationId);
      throw new ApiException(502, e.getCause().getMessage());
    }
    return Map.of("pages", st.pages(), "keptPages", st.keptPages(), "literalPages", st.literalPages(),
        "recentPages", st.recentPages(), "bytes", st.bytes(), "pumpMs", st.ms());
  }

  /**
   * Lets a held page pump (hybrid's, see {@link PagePump#hold}) send the rest of the memory.
   * Idempotent; false when this agent runs no pump for the migration (done, stopped, or never
   * started here).
   */
  public boolean releasePump(String migrationId) {
    PagePump pump = pumps.get(migrationId);
    if (pump == null) {
      return false;
    }
    pump.release();
    return true;
  }

  /**
   * Starts pumping the frozen tree's lazy pages to the target's page store.
   *
   * @param held what pre-copy rounds left on the target (null: send every page)
   * @param pids the frozen processes: pid in the container to host pid (completed on demand)
   * @param reconnect whether a broken connection is dialled again (for up to {@link #PUMP_RETRY_MS}):
   *     where the pod may run on the target from these pages (hybrid, or a pump resumed after a
   *     restart). Pre-copy's frozen pump fails at once instead: its migration rolls back rather
   *     than keep the pod frozen while a dead target is dialled.
   */
  private java.util.concurrent.CompletableFuture<PagePump.Stats> startPump(String migrationId, LocalPod pod,
      List<CriuPagemap.LazyRange> ranges, SourcePages held, Map<Long, Long> pids, String pumpAddress, long bandwidth,
      boolean hold, boolean reconnect) {
    String podName = pod.name();
    ContainerSpec c = pod.spec().containers().get(0);
    Map<Long, java.nio.channels.FileChannel> mems = new ConcurrentHashMap<>();
    PagePump.Memory memory = (pid, vaddr, buf) -> {
      Long host = pids.get(pid);
      if (host == null) {
        // born between the listing (before the freeze) and the freeze: the tree is frozen now
        pids.putAll(pidsOf(pods.runtime().state(pods.containerId(podName, c.name())).pid()));
        host = pids.get(pid);
      }
      if (host == null) {
        throw new IOException("no frozen process has pid " + pid + " in pod " + podName);
      }
      long hostPid = host;
      return ProcessMemory.read(mems.computeIfAbsent(pid, p -> openMem(hostPid)), vaddr, buf);
    };
    PagePump pump = new PagePump(ranges, held, memory, bandwidth, hostCap);
    if (hold) {
      pump.hold();
    }
    pumps.put(migrationId, pump);
    java.util.concurrent.CompletableFuture<PagePump.Stats> running = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      try {
        PagePump current = pump;
        long giveUpAt = 0;
        while (true) {
          try {
            PagePump.Stats st = pumpOnce(current, pumpAddress);
            markPumped(migrationId);
            LOG.info("pumped {} pages of pod {} ({} kept from pre-copy, {} sent, {} asked for ahead, {}) in {} ms",
                st.pages(), podName, st.keptPages(), st.literalPages(), st.wantedPages(), st.recentPages() < 0
                    ? "the last round's changed set too large to send first" : st.recentPages() + " sent first as"
                    + " recently written", st.ms());
            return st;
          } catch (IOException e) {
            giveUpAt = giveUpAt == 0 ? System.currentTimeMillis() + PUMP_RETRY_MS : giveUpAt;
            if (!reconnect || current.stopped() || !brokenConnection(e) || System.currentTimeMillis() > giveUpAt) {
              throw new UncheckedIOException("page pump to " + pumpAddress + " failed: " + e.getMessage(), e);
            }
            // a cut link: the target keeps what arrived and waits for the pump to connect again
            LOG.warn("page pump of pod {} to {} broke ({}); connecting again", podName, pumpAddress, e.toString());
            sleepQuietly(1000);
            PagePump next = new PagePump(ranges, held, memory, bandwidth, hostCap);
            if (!pumps.replace(migrationId, current, next)) { // stopped meanwhile (a rollback took it)
              throw new UncheckedIOException("page pump to " + pumpAddress + " stopped after: " + e.getMessage(), e);
            }
            current = next;
          }
        }
      } finally {
        mems.values().forEach(ch -> {
          try {
            ch.close();
          } catch (IOException ignored) {
            // closing a proc file
          }
        });
      }
    });
    pumping.put(migrationId, running);
    return running;
  }

  /** One connection's worth of pumping: both lanes, every page, the target's confirmation. */
  private PagePump.Stats pumpOnce(PagePump pump, String pumpAddress) throws IOException {
    // a stop (a rollback) closes the TCP sockets, also while they connect over a cut link
    List<Socket> tcp = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.function.Consumer<Socket> track = t -> {
      tcp.add(t);
      pump.connecting(tcp.toArray(Socket[]::new));
    };
    // (no Nagle, which PeerTls turns off: pages a restored pod waits for go out in small writes,
    // each held until the previous was acknowledged, up to the peer's 40 ms delayed ACK)
    try (Socket s = dialPump(pumpAddress, track); Socket p = dialPump(pumpAddress, track)) {
      s.setSoTimeout(STALL_MS);
      return pump.run(s, p);
    } catch (IOException e) {
      tcp.forEach(PeerTls::abort);
      throw e;
    }
  }

  /**
   * One lane of the pump: over mutual TLS where this agent has its identity (the pages are the
   * pod's memory, secrets included); else a classic socket, whose errors on a cut link are the
   * {@code SocketException}s {@link #brokenConnection} knows.
   */
  private Socket dialPump(String pumpAddress, java.util.function.Consumer<Socket> track) throws IOException {
    if (tls.secure()) {
      return tls.connect(pumpAddress, 5000, track);
    }
    String[] hp = pumpAddress.split(":");
    Socket s = new Socket();
    track.accept(s);
    s.setTcpNoDelay(true);
    try {
      s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), 5000);
    } catch (IOException e) {
      s.close();
      throw e;
    }
    return s;
  }

  /** The pump's connection failed (reset, refused, silent, closed), as opposed to a refusal or a read error. */
  private static boolean brokenConnection(IOException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof java.net.SocketException || t instanceof java.net.SocketTimeoutException
          || t instanceof java.io.EOFException || t instanceof java.nio.channels.ClosedChannelException) {
        return true;
      }
      // a socket channel's (TLS) write on a cut connection fails with a plain IOException
      if (t instanceof IOException && !(t instanceof javax.net.ssl.SSLException) && t.getMessage() != null
          && (t.getMessage().equals("Broken pipe") || t.getMessage().startsWith("Connection reset"))) {
        return true;
      }
    }
    return false;
  }

  /**
   * At start-up: a pump of the agent that ran before this one was cut off mid-way (it was
   * killed) while the target's copy of the pod waits for its pages, and the source's tree is
   * still frozen by its lazy dump (orphaned, alive). Pumps every page again from that tree; the
   * target's store waits for the pump to come back ({@code TargetRole.PUMP_RECONNECT_MS}) and
   * keeps what already arrived. The coordinator then finishes or rolls back as usual.
   */
  public void resumePumps() {
    if (!Files.isDirectory(migrationsDir)) {
      return;
    }
    try (var dirs = Files.list(migrationsDir)) {
      for (Path dir : (Iterable<Path>) dirs::iterator) {
        try {
          resumePump(dir);
        } catch (IOException | RuntimeException e) {
          LOG.warn("page pump of {} not resumed: {}", dir.getFileName(), e.getMessage());
        }
      }
    } catch (IOException e) {
      LOG.warn("cannot look for interrupted page pumps in {}: {}", migrationsDir, e.getMessage());
    }
  }

  private void resumePump(Path dir) throws IOException {
    String migrationId = dir.getFileName().toString();
    Path lazyFile = dir.resolve(LAZY_DUMP_FILE);
    Path pumpFile = dir.resolve(PUMP_FILE);
    if (!Files.exists(lazyFile) || !Files.exists(pumpFile)) {
      return;
    }
    if (Files.exists(dir.resolve(PUMP_DONE_FILE))) {
      // (pre-copy's pump ends before the restore: a pump started again would dial the target's
      // closed store for PUMP_RETRY_MS and hold up the migration's end that long)
      LOG.info("[{}] page pump finished before the restart: not started again", migrationId);
      return;
    }
    LocalPod pod = pods.store().all().stream().filter(p -> migrationId.equals(p.migrationId())).findFirst().orElse(null);
    if (pod == null) {
      return;
    }
    Map<Long, Long> pids = frozenPidsIn(lazyFile);
    if (pids.isEmpty() || !pids.values().stream().allMatch(SourceRole::traced)) {
      return; // the dump is over: nothing frozen to take pages from
    }
    com.fasterxml.jackson.databind.JsonNode pump = dev.ferry.api.Json.readFile(pumpFile, com.fasterxml.jackson.databind.JsonNode.class);
    List<CriuPagemap.LazyRange> ranges = new java.util.ArrayList<>();
    pump.path("ranges").forEach(r -> ranges.add(new CriuPagemap.LazyRange(r.get(0).asLong(), r.get(1).asLong(), r.get(2).asInt())));
    frozenPids.put(migrationId, pids);
    startPump(migrationId, pod, ranges, null, pids, pump.path("target").asText(), pump.path("bandwidth").asLong(), false,
        true);
    LOG.info("[{}] page pump of pod {} started again after a restart: every page of the frozen tree goes to {} anew",
        migrationId, pod.name(), pump.path("target").asText());
  }

  private void markPumped(String migrationId) {
    try {
      Files.writeString(migrationsDir.resolve(migrationId).resolve(PUMP_DONE_FILE), "");
    } catch (IOException e) {
      LOG.warn("[{}] the pump's end not written down ({}): a restarted agent would pump again", migrationId,
          e.getMessage());
    }
  }

  private static java.nio.channels.FileChannel openMem(long hostPid) {
    try {
      return ProcessMemory.open(hostPid);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the memory of frozen pid " + hostPid, e);
    }
  }

  /** Whether this agent talks to other agents over mutual TLS. */
  public boolean peerTls() {
    return tls.secure();
  }

  /** Once the lazy dump has ended: its page server's relay (if any: TLS, or a cap) goes too. */
  private void endRelays(String migrationId) {
    pageServers.remove(migrationId);
    pageDaemon.unrelay(migrationId);
  }

  private static int freePort(String ip) throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName(ip))) {
      return s.getLocalPort();
    }
  }

  /**
   * Pre-copy round: while the pod still runs, streams its bundles (rootfs and config) so that
   * the frozen round only carries the checkpoint images and the files changed since.
   */
  public Map<String, Object> presync(String migrationId, String podName, String targetData, long bandwidth) {
    LocalPod pod = pods.store().get(podName);
    List<TransferSource> sources = new ArrayList<>();
    for (ContainerSpec c : pod.spec().containers()) {
      sources.add(new TransferSource(pods.store().bundle(podName, c.name()), "bundles/" + c.name()));
    }
    return transfer(migrationId + TargetRole.PRESYNC, migrationId, sources, null, targetData, List.of(), bandwidth, true);
  }

  /**
   * Memory pre-copy round, pod running: reads every private page of the pod's processes,
   * and ships those whose contents changed since the previous round (all of them in round 1).
   * No kernel dirty tracking is needed; see {@link SourcePages}.
   */
  public Map<String, Object> memoryRound(String migrationId, String podName, String targetData, long bandwidth,
      int round) throws IOException {
    LocalPod pod = pods.store().get(podName);
    if (!"running".equals(pod.state())) {
      throw ApiException.conflict("pod '" + podName + "' is " + pod.state() + ", not running: no memory to pre-copy");
    }
    Map<String, SourcePages> byContainer = precopies.computeIfAbsent(migrationId, k -> new ConcurrentHashMap<>());
    Path stage = migrationsDir.resolve(migrationId).resolve("mem-stage");
    Files2.deleteTree(stage);
    long t0 = System.nanoTime();
    List<SourcePages.RoundFile> files = new ArrayList<>();
    long scanned = 0;
    long changed = 0;
    for (ContainerSpec c : pod.spec().containers()) {
      SourcePages pages = byContainer.computeIfAbsent(c.name(), k -> new SourcePages());
      long init = pods.runtime().state(pods.containerId(podName, c.name())).pid();
      if (init <= 0) {
        throw ApiException.conflict("container " + c.name() + " of pod " + podName + " is not running");
      }
      for (long pid : ProcessMemory.processesLike(init)) {
        long nsPid = ProcessMemory.nsPid(pid);
        if (nsPid < 0) {
          continue; // exited since it was listed
        }
        SourcePages.RoundFile f = pages.openRound(nsPid,
            stage.resolve(c.name()).resolve("round-" + round).resolve(nsPid + ".pages"));
        try (f) {
          ProcessMemory.scan(pid, f::pages);
        }
        files.add(f);
        scanned += f.stats().scannedPages();
        changed += f.stats().changedPages();
      }
    }
    long scanMs = (System.nanoTime() - t0) / 1_000_000;
    Map<String, Object> sentNow;
    try {
      sentNow = transfer(migrationId + TargetRole.PRESYNC, migrationId, List.of(new TransferSource(stage, "mem")),
          Map.of(), targetData, List.of(), bandwidth, false);
    } catch (RuntimeException e) {
      precopies.remove(migrationId); // what the target holds is in doubt now
      throw e;
    } finally {
      Files2.deleteTree(stage);
    }
    files.forEach(SourcePages.RoundFile::commit);
    long ms = (System.nanoTime() - t0) / 1_000_000;
    LOG.info("memory round {} of pod {}: {} of {} pages changed, {} bytes sent in {} ms (scan {} ms)", round, podName,
        changed, scanned, sentNow.get("bytes"), ms, scanMs);
    return Map.of("round", round, "scannedPages", scanned, "changedPages", changed, "bytes", sentNow.get("bytes"),
        "scanMs", scanMs, "roundMs", ms, "resumes", sentNow.getOrDefault("resumes", 0));
  }

  /**
   * Final round, pod frozen: streams the checkpoint images and the bundle files that changed
   * since the pre-copy round (all of them if there was none).
   */
  public Map<String, Object> send(String migrationId, String podName, String targetData, List<String> faults,
      long bandwidth) {
    LocalPod pod = pods.store().get(podName);
    if (!"checkpointed".equals(pod.state()) || !migrationId.equals(pod.migrationId())) {
      throw ApiException.conflict("pod '" + podName + "' is not checkpointed for migration " + migrationId);
    }
    injectFaults(faults);
    List<TransferSource> sources = new ArrayList<>();
    long t0 = System.nanoTime();
    long keptPages = 0;
    long literalPages = 0;
    Map<String, SourcePages> precopied = precopies.getOrDefault(migrationId, Map.of());
    java.util.Set<Object> mapped = mappedForWriting.getOrDefault(migrationId, java.util.Set.of());
    for (ContainerSpec c : pod.spec().containers()) {
      sources.add(new TransferSource(pods.store().bundle(podName, c.name()), "bundles/" + c.name(), java.util.Set.of(),
          mapped));
      SourcePages pages = precopied.get(c.name());
      java.util.Set<String> skip = java.util.Set.of();
      // after a lazy dump the memory goes through the page pump; the images hold no pages to compare
      if (pages != null && pages.hasRounds() && !lazyDumps.containsKey(migrationId)) {
        try {
          SourcePages.Recipes r = pages.writeRecipes(images(migrationId, c.name()));
          skip = r.replacedImages();
          literalPages += r.stats().changedPages();
          keptPages += r.stats().scannedPages() - r.stats().changedPages();
        } catch (IOException e) {
          throw new UncheckedIOException("pre-copy recipe for container " + c.name() + ": " + e.getMessage(), e);
        }
      }
      sources.add(new TransferSource(images(migrationId, c.name()), "images/" + c.name(), skip));
    }
    long recipeMs = (System.nanoTime() - t0) / 1_000_000;
    Map<String, Object> r = new java.util.HashMap<>(
        transfer(migrationId, migrationId, sources, sent.get(migrationId), targetData, faults, bandwidth, true));
    r.put("recipeMs", recipeMs);
    r.put("keptPages", keptPages);
    r.put("literalPages", literalPages);
    return r;
  }

  private Map<String, Object> transfer(String transferId, String migrationId, List<TransferSource> sources,
      Map<String, ImageSender.FileStamp> baseline, String targetData, List<String> faults, long bandwidth,
      boolean keepBaseline) {
    TransferProgress progress = new TransferProgress();
    transfers.put(migrationId, progress);
    cancelled.remove(migrationId);
    long t0 = System.nanoTime();
    java.util.List<Thread> watchdogs = new java.util.concurrent.CopyOnWriteArrayList<>();
    boolean[] stalled = {false};
    java.util.concurrent.atomic.AtomicInteger dials = new java.util.concurrent.atomic.AtomicInteger();
    Set<Socket> open = ConcurrentHashMap.newKeySet();
    sockets.put(migrationId, open);
    // over several streams each send is a group of its own at the target (a retried send starts
    // clean there without a lane of it wiping another's files): its id names the attempt
    String sentId = streams > 1 ? transferId + "@" + Long.toString(System.nanoTime(), 36) : transferId;
    dev.ferry.transfer.ParallelSender sender = new dev.ferry.transfer.ParallelSender(streams,
        faults.contains("corrupt-image-in-transit"), bandwidth, dev.ferry.transfer.Compression.AUTO, hostCap);
    // each connection, the first and any resuming one, of each stream, is cut by a watchdog if it stalls
    ImageSender.Dialer dialer = () -> {
      if (cancelled.contains(migrationId)) {
        throw new ImageSender.TransferAbandoned("cancelled");
      }
      // each stream's first connection may be one opened ahead of the freeze (connectAhead)
      boolean firstOfAStream = dials.getAndIncrement() < streams;
      Socket s = firstOfAStream ? dataConnection(migrationId, targetData) : tls.connect(targetData, 2000);
      if (!firstOfAStream) {
        LOG.info("resuming transfer {} to {} after {} bytes", transferId, targetData, progress.bytes());
      }
      open.add(s);
      if (cancelled.contains(migrationId)) { // a cancel that came while connecting
        PeerTls.abort(s);
        throw new ImageSender.TransferAbandoned("cancelled");
      }
      s.setSoTimeout(TRANSFER_STALL_MS);
      watchdogs.add(stallWatchdog(s, progress, transferId, () -> stalled[0] = true));
      return s;
    };
    try {
      if (faults.contains("transfer-connection-drop")) {
        dropConnectionOnce(migrationId, progress);
      }
      Map<String, ImageSender.FileStamp> now =
          sender.send(sentId, sources, baseline, dialer, RESUME_WINDOW_MS, progress);
      if (keepBaseline) {
        sent.put(migrationId, now);
      }
    } catch (IOException e) {
      sent.remove(migrationId); // the target's copy is in doubt: next round sends everything
      precopies.remove(migrationId);
      String why = cancelled.contains(migrationId) ? "cancelled"
          : (stalled[0] ? "cut after no progress for " + TRANSFER_STALL_MS / 1000 + " s (link down or peer hung); " : "")
              + e.getMessage();
      throw new ApiException(502, "transfer to " + targetData + " failed after " + progress.bytes() + " bytes"
          + (sender.resumes() > 0 ? " and " + sender.resumes() + " resumes" : "") + ": " + why);
    } finally {
      sockets.remove(migrationId, open);
      watchdogs.forEach(Thread::interrupt);
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    long wire = sender.wireStats().wireBytes();
    LOG.info("sent {}{}: {} bytes in {} files in {} ms ({} MB/s; {} bytes on the wire, {} MB/s){}", transferId,
        streams > 1 ? " over " + streams + " streams" : "",
        progress.bytes(), progress.files(), ms, String.format("%.0f", progress.bytesPerSecond() / 1e6), wire,
        String.format("%.0f", wire / 1e3 / Math.max(1, ms)), sender.resumes() > 0 ? ", resumed " + sender.resumes() + " times" : "");
    return Map.of("bytes", progress.bytes(), "files", progress.files(), "transferMs", ms, "resumes", sender.resumes());
  }

  /**
   * Fault injection for tests: once 4 MiB went out, the transfer's connection is reset, as a
   * middlebox or a flapping link would; the transfer must resume.
   */
  private void dropConnectionOnce(String migrationId, TransferProgress progress) {
    Thread t = new Thread(() -> {
      try {
        while (progress.bytes() < (4 << 20) && !progress.finished()) {
          Thread.sleep(5);
        }
        Set<Socket> open = sockets.get(migrationId);
        if (open != null && !open.isEmpty() && !progress.finished()) {
          LOG.warn("injected fault: resetting the transfer's connection after {} bytes", progress.bytes());
          PeerTls.abort(open.iterator().next());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "ferry-fault-drop");
    t.setDaemon(true);
    t.start();
  }

  /**
   * A cut link does not fail a blocked write for many minutes (TCP keeps retransmitting):
   * a connection that moves nothing for {@link #TRANSFER_STALL_MS} is cut here instead.
   */
  private static Thread stallWatchdog(Socket s, TransferProgress progress, String transferId, Runnable onStall) {
    Thread t = new Thread(() -> {
      long last = -1;
      long since = System.nanoTime();
      try {
        while (!s.isClosed() && !progress.finished()) {
          Thread.sleep(500);
          long now = progress.bytes();
          if (now != last) {
            last = now;
            since = System.nanoTime();
          } else if ((System.nanoTime() - since) / 1_000_000 > TRANSFER_STALL_MS) {
            LOG.warn("transfer {} stalled: no progress for {} s, cutting its connection", transferId,
                TRANSFER_STALL_MS / 1000);
            onStall.run();
            PeerTls.abort(s);
            return;
          }
        }
      } catch (InterruptedException e) {
        // transfer over
      }
    }, "ferry-stall-watchdog");
    t.setDaemon(true);
    t.start();
    return t;
  }

  /** Connections to a migration's target opened ahead of the frozen window ({@link #connectAhead}). */
  private final Map<String, java.util.Deque<java.util.concurrent.CompletableFuture<Socket>>> spares =
      new ConcurrentHashMap<>();

  /**
   * Opens {@code count} connections to the target's data port in the background (the TLS
   * handshake included) while the pod is being frozen and dumped: the frozen round's transfer
   * and the identity hand-over then start on a ready connection ({@link #dataConnection}).
   */
  public void connectAhead(String migrationId, String targetData, int count) {
    var q = spares.computeIfAbsent(migrationId, k -> new java.util.concurrent.ConcurrentLinkedDeque<>());
    for (int i = 0; i < count; i++) {
      q.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
        try {
          return tls.connect(targetData, 5000);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }));
    }
  }

  /** A connection to {@code targetData}: one opened ahead if there is one that worked, else a new one. */
  private Socket dataConnection(String migrationId, String targetData) throws IOException {
    var q = spares.get(migrationId);
    java.util.concurrent.CompletableFuture<Socket> f;
    while (q != null && (f = q.poll()) != null) {
      try {
        return f.get(5, java.util.concurrent.TimeUnit.SECONDS); // still handshaking: as quick as a new one
      } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
        LOG.info("a connection opened ahead to {} failed ({}); connecting anew", targetData, e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while connecting to " + targetData);
      }
    }
    return tls.connect(targetData, 5000);
  }

  /** Closes the connections opened ahead that no step used. */
  private void dropSpares(String migrationId) {
    var q = spares.remove(migrationId);
    if (q != null) {
      q.forEach(f -> f.thenAccept(s -> {
        try {
          s.close();
        } catch (IOException e) {
          // closed already
        }
      }));
    }
  }

  /** Stops a migration's transfer at once by closing its connection (cancel). Idempotent. */
  public void cancelTransfer(String migrationId) {
    cancelled.add(migrationId);
    Set<Socket> open = sockets.remove(migrationId);
    if (open != null) {
      open.forEach(PeerTls::abort);
    }
  }

  /** Bytes sent so far by the transfer of a migration. */
  public Map<String, Object> progress(String migrationId) {
    TransferProgress p = transfers.get(migrationId);
    if (p == null) {
      return Map.of("bytes", 0, "bytesPerSecond", 0, "finished", false);
    }
    return Map.of("bytes", p.bytes(), "bytesPerSecond", (long) p.bytesPerSecond(), "finished", p.finished());
  }

  /**
   * Lets go of the pod's IP and MAC so that the target can take them: the sandbox's link goes
   * down in one system call (a link that is down answers for none of its addresses). The
   * address itself stays configured, frozen with the pod, until the pod is resumed or removed.
   *
   * <p>With {@code handTo} (the target's data address) the target takes the identity right after,
   * told over a connection opened before the link goes down ({@link IdentityHandover}): the IP
   * is unanswered only for one message between the agents.
   *
   * @return when the link went down and, with {@code handTo}, when the target's came up
   *     (microseconds since the epoch; 0 when not handed over)
   */
  public synchronized IdentityHandover.Times releaseIdentity(String migrationId, String podName, String handTo)
      throws IOException {
    Laps laps = new Laps();
    LocalPod pod = pods.store().get(podName);
    requireMigration(pod, migrationId);
    // recorded first: from the link going down until the target's comes up nobody answers
    pods.store().save(pod.withIdentityReleased(true));
    laps.lap("record");
    // (runsc) the bridge port: netstack's packet socket on eth0 would not survive eth0 going down
    try (LinkSwitch link = pod.spec().runsc() ? pods.network(podName).hostLinkSwitch() : pods.network(podName).linkSwitch()) {
      IdentityHandover.GoSilent goSilent = () -> {
        link.down();
        return Laps.epochMicros();
      };
      Socket connection = handTo == null ? null : dataConnection(migrationId, handTo);
      laps.lap("connect");
      IdentityHandover.Times t = handTo == null ? new IdentityHandover.Times(goSilent.now(), 0)
          : IdentityHandover.handOver(connection, migrationId, podName, goSilent, laps);
      laps.lap("close");
      t = new IdentityHandover.Times(t.downAtMicros(), t.upAtMicros(), laps.asMap());
      LOG.info("pod {} let go of {}: its link is down{}", podName, pod.spec().identity().ip(),
          handTo == null ? "" : "; the target took it " + (t.upAtMicros() - t.downAtMicros()) + " us later");
      return t;
    }
  }

  /**
   * Caps the CPU of the pod's app containers at {@code percent} of a CPU (0: no cap), so that
   * a pod writing faster than pre-copy ships lets the rounds converge. Idempotent.
   */
  public void throttle(String migrationId, String podName, int percent) {
    LocalPod pod = pods.store().get(podName);
    if (!"running".equals(pod.state())) {
      return; // checkpointed or gone: nothing runs to throttle
    }
    for (ContainerSpec c : pod.spec().containers()) {
      pods.runtime().limitCpu(pods.containerId(podName, c.name()), percent);
    }
    LOG.info("pod {} CPU {}", podName, percent > 0 ? "capped at " + percent + "% of a CPU" : "cap lifted");
  }

  /**
   * The undo of memory pre-copy rounds: forgets what the target held and removes the round
   * files. The pod itself was never touched by them. Idempotent.
   */
  public synchronized void forgetPrecopy(String migrationId, String podName) {
    precopies.remove(migrationId);
    try {
      throttle(migrationId, podName, 0);
    } catch (RuntimeException e) {
      LOG.warn("pod {}: lifting the CPU cap failed: {}", podName, e.getMessage()); // a restored pod never had it
    }
    LocalPod pod = pods.store().find(podName).orElse(null);
    if (pod == null || !migrationId.equals(pod.migrationId())) {
      MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host());
    } else {
      Files2.deleteTree(migrationsDir.resolve(migrationId).resolve("mem-stage"));
    }
  }

  /**
   * The undo of everything above: takes the identity back, restores the app from its own
   * checkpoint where it is gone, removes CRIU's leftover network lock, and tells neighbours.
   */
  public void resume(String migrationId, String podName) {
    awaitCheckpoint(migrationId); // outside the agent's lock, which the checkpoint does not take either
    resumeNow(migrationId, podName);
  }

  private synchronized void resumeNow(String migrationId, String podName) {
    dropSpares(migrationId);
    LocalPod pod = pods.store().find(podName).orElse(null);
    if (pod == null || !migrationId.equals(pod.migrationId())) {
      return; // never touched by this migration, or resumed already
    }
    PagePump pump = pumps.remove(migrationId);
    if (pump != null) {
      pump.stop();
      awaitQuietly(pumping.remove(migrationId), 10);
    }
    Map<Long, Long> thawed = frozenPids.remove(migrationId);
    PostCopy.LazyDump lazy = lazyDumps.remove(migrationId);
    Path lazyFile = migrationsDir.resolve(migrationId).resolve(LAZY_DUMP_FILE);
    boolean wasLazy = lazy != null || Files.exists(lazyFile);
    if (lazy != null && lazy.alive()) {
      try {
        releaseTcpRepair(podName, thawed); // still frozen: the app never sees a socket in repair mode
        int rc = lazy.cancel(); // CRIU thaws the tree where it stopped
        LOG.info("lazy dump of pod {} cancelled (CRIU exit {}), tree thawed", podName, rc);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while cancelling the lazy dump", e);
      }
    } else if (lazy == null && Files.exists(lazyFile)) {
      thawLazyDumpOfEarlierAgent(podName, lazyFile);
    }
    if (wasLazy) {
      endRelays(migrationId);
    }
    PodIdentity id = pod.spec().identity();
    PodNetwork net = pods.network(podName);
    if (pod.spec().runsc()) {
      resumeRunsc(migrationId, pod);
    } else if (!net.answersFor(id.ip())) {
      net.takeIdentity(id.ip(), id.prefixLength(), id.mac());
    }
    pods.startSandbox(pod.spec());
    for (ContainerSpec c : pod.spec().containers()) {
      String cid = pods.containerId(podName, c.name());
      pods.runtimeFor(pod.spec()).thaw(cid); // a cancelled lazy dump hands the tree back frozen, as the checkpoint found it
      if (!pods.runtimeFor(pod.spec()).state(cid).running()) {
        if (wasLazy) {
          // a lazy dump never wrote the memory pages: there is nothing to restore from
          throw new IllegalStateException("pod " + podName + " did not come back from its cancelled lazy dump and its"
              + " memory was never written to disk: it cannot be restored on the source; it is lost");
        }
        pods.runtimeFor(pod.spec()).destroy(cid);
        pods.runtimeFor(pod.spec()).restore(cid, pods.store().bundle(podName, c.name()), images(migrationId, c.name()),
            work(migrationId, "resume-" + System.nanoTime(), c.name()));
      }
    }
    // only now: before the restore the lock kept the client's packets from meeting a closed socket
    net.removeCriuLock();
    if (!pod.spec().runsc()) {
      net.announce(id.ip()); // (a runsc pod announced itself from its sandbox: see resumeRunsc)
    }
    pods.store().save(new LocalPod(pod.spec(), "running", null, false));
    MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host());
    transfers.remove(migrationId);
    sent.remove(migrationId);
    mappedForWriting.remove(migrationId);
    precopies.remove(migrationId);
    LOG.info("pod {} resumed on the source", podName);
  }

  /**
   * The undo for a runsc pod: its sandbox, kept paused since the checkpoint, runs on (a sandbox
   * that is gone, say after a crash, is restored from its own images, with the IP put back on
   * eth0 first since netstack reads it there); then its bridge port comes up again. Its eth0
   * was never touched, so netstack still serves the pod's IP.
   */
  private void resumeRunsc(String migrationId, LocalPod pod) {
    String podName = pod.name();
    dev.ferry.runtime.RunscRuntime runsc = pods.runsc();
    for (ContainerSpec c : pod.spec().containers()) {
      String cid = pods.containerId(podName, c.name());
      if (runsc.state(cid).status().equals("missing") || runsc.state(cid).status().equals("stopped")) {
        if (!Files.isDirectory(images(migrationId, c.name()))) {
          throw new IllegalStateException("runsc sandbox of pod " + podName + " is gone and was never checkpointed:"
              + " it cannot be resumed");
        }
        PodIdentity id = pod.spec().identity();
        pods.network(podName).takeIdentity(id.ip(), id.prefixLength(), id.mac());
        runsc.destroy(cid);
        runsc.restore(cid, pods.store().bundle(podName, c.name()), images(migrationId, c.name()),
            work(migrationId, "resume-" + System.nanoTime(), c.name()));
      }
      runsc.thaw(cid);
    }
    try (LinkSwitch port = pods.network(podName).hostLinkSwitch()) {
      port.up();
    }
    // the bridges may have learnt the MAC behind another port meanwhile (the target's): here it is again
    pods.network(podName).announceFromSandbox(pod.spec().identity().ip());
  }

  /**
   * Takes the frozen tree's TCP sockets out of repair mode ahead of a thaw this agent does not
   * control: a rollback that kills the target's post-copy page client makes CRIU's lazy dump
   * fail, and CRIU then thaws the tree with its sockets still in repair mode. Harmless while the
   * tree stays frozen; a no-op without a lazy dump. Idempotent.
   */
  public void releaseSockets(String migrationId, String podName) {
    Map<Long, Long> pids = frozenPids.get(migrationId);
    Path lazyFile = migrationsDir.resolve(migrationId).resolve(LAZY_DUMP_FILE);
    if (pids == null && Files.exists(lazyFile)) { // written down by an agent that died since
      pids = frozenPidsIn(lazyFile);
    }
    releaseTcpRepair(podName, pids);
  }

  /**
   * This agent restarted while its lazy dump kept the pod frozen (the dump runs on, orphaned):
   * makes it give up from what was written down, waits for the tree to run, and takes its TCP
   * sockets out of repair mode.
   */
  private void thawLazyDumpOfEarlierAgent(String podName, Path lazyFile) {
    com.fasterxml.jackson.databind.JsonNode n = dev.ferry.api.Json.readFile(lazyFile, com.fasterxml.jackson.databind.JsonNode.class);
    String[] hp = n.path("pageServer").asText().split(":");
    Map<Long, Long> pids = frozenPidsIn(lazyFile);
    releaseTcpRepair(podName, pids); // still frozen: the app never sees a socket in repair mode
    boolean told = PostCopy.cancelAt(hp[0], Integer.parseInt(hp[1]));
    // the earlier agent may have died while CRIU was still dumping: it listens once the dump is in place
    String migrationId = lazyFile.getParent().getFileName().toString();
    long dumping = System.currentTimeMillis() + 60_000;
    while (!told && System.currentTimeMillis() < dumping && !lazyDumpProcesses(migrationId).isEmpty()) {
      sleepQuietly(200);
      told = PostCopy.cancelAt(hp[0], Integer.parseInt(hp[1]));
    }
    if (told) {
      releaseTcpRepair(podName, pids); // sockets CRIU put in repair mode since the first try
    }
    long deadline = System.currentTimeMillis() + 30_000;
    // CRIU lets go of the tree when it gives up: the processes are no longer traced then
    while (told && System.currentTimeMillis() < deadline && pids.values().stream().anyMatch(SourceRole::traced)) {
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
    LOG.info("lazy dump of pod {} left by an earlier agent {}", podName, told ? "cancelled, tree thawed" : "had ended");
  }

  /**
   * After the commit point, this agent restarted while its predecessor's lazy dump still ran
   * (orphaned, holding the source's frozen tree): the target has the pod, so the dump (CRIU, or
   * an older agent's runc and its CRIU) is ended by force before the source copy is removed.
   */
  private void killOrphanedDump(String migrationId, String podName) {
    java.util.Set<ProcessHandle> doomed = new java.util.HashSet<>();
    for (ProcessHandle dump : lazyDumpProcesses(migrationId)) {
      doomed.add(dump);
      dump.descendants().forEach(doomed::add); // (an older agent's runc: its CRIU)
    }
    doomed.forEach(ProcessHandle::destroyForcibly);
    LOG.info("lazy dump of pod {} left by an earlier agent ended by force ({} processes)", podName, doomed.size());
  }

  /**
   * The lazy dump ({@code criu dump --lazy-pages}, or an older agent's {@code runc checkpoint
   * --lazy-pages}) of a migration, however many agents ago it started.
   */
  private List<ProcessHandle> lazyDumpProcesses(String migrationId) {
    String images = migrationsDir.resolve(migrationId).toString();
    return Procs.withCommandLineContaining("--lazy-pages", images);
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static boolean traced(long pid) {
    return dev.ferry.runtime.ProcessMemory.tracerPid(pid) != 0;
  }


  /** The frozen processes a lazy dump's record names: pid in the container to host pid. */
  private static Map<Long, Long> frozenPidsIn(Path lazyFile) {
    com.fasterxml.jackson.databind.JsonNode n = dev.ferry.api.Json.readFile(lazyFile, com.fasterxml.jackson.databind.JsonNode.class);
    Map<Long, Long> pids = new ConcurrentHashMap<>();
    n.path("pids").fields().forEachRemaining(e -> pids.put(Long.parseLong(e.getKey()), e.getValue().asLong()));
    return pids;
  }

  /** A cancelled lazy dump would leave the thawed tree's TCP sockets in repair mode: take them out first. */
  private static void releaseTcpRepair(String podName, Map<Long, Long> pids) {
    if (pids == null) {
      return;
    }
    for (long hostPid : pids.values()) {
      try {
        int n = dev.ferry.runtime.ForeignSockets.releaseRepair(hostPid);
        LOG.info("pod {}: {} TCP socket(s) of pid {} taken out of repair mode", podName, n, hostPid);
      } catch (IOException | RuntimeException | LinkageError e) {
        LOG.warn("pod {}: could not take the TCP sockets of pid {} out of repair mode: {}", podName, hostPid,
            e.getMessage());
      }
    }
  }

  /** After the commit point: the pod runs on the target, remove it here. Idempotent. */
  public synchronized void finish(String migrationId, String podName) throws InterruptedException {
    dropSpares(migrationId);
    PostCopy.LazyDump lazy = lazyDumps.remove(migrationId);
    java.util.concurrent.CompletableFuture<PagePump.Stats> pumped = pumping.remove(migrationId);
    if (lazy != null && pumped != null) {
      // Ferry's pump took the pages from the frozen tree: let it finish, then end the dump
      awaitQuietly(pumped, 30 * 60);
      int rc = lazy.end();
      LOG.info("lazy dump of pod {} ended after the page pump (CRIU exit {})", podName, rc);
    } else if (lazy != null) {
      int rc = lazy.awaitExit(java.time.Duration.ofMinutes(30)); // it ends once every page has gone
      LOG.info("lazy dump of pod {} done serving pages (CRIU exit {})", podName, rc);
    } else if (Files.exists(migrationsDir.resolve(migrationId).resolve(LAZY_DUMP_FILE))) {
      awaitQuietly(pumped, 30 * 60); // a pump resumed after a restart takes its pages from the orphaned dump's tree
      killOrphanedDump(migrationId, podName);
    }
    endRelays(migrationId);
    pumps.remove(migrationId);
    frozenPids.remove(migrationId);
    LocalPod pod = pods.store().find(podName).orElse(null);
    if (pod != null && migrationId.equals(pod.migrationId())) {
      pods.destroy(podName, pod.spec());
    }
    MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host());
    transfers.remove(migrationId);
    sent.remove(migrationId);
    mappedForWriting.remove(migrationId);
    precopies.remove(migrationId);
  }

  private static void awaitQuietly(java.util.concurrent.CompletableFuture<?> f, long seconds) {
    if (f == null) {
      return;
    }
    try {
      f.get(seconds, java.util.concurrent.TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warn("page pump ended with: {}", e.getMessage());
    }
  }

  private static void requireMigration(LocalPod pod, String migrationId) {
    if (!migrationId.equals(pod.migrationId())) {
      throw ApiException.conflict("pod '" + pod.name() + "' is not part of migration " + migrationId);
    }
  }

  static long sizeOf(Path dir) {
    try (var walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
