package dev.ferry.agent;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.PodIdentity;
import dev.ferry.api.PodSpec;
import dev.ferry.runtime.Files2;
import dev.ferry.runtime.LinkSwitch;
import dev.ferry.runtime.PendingRestore;
import dev.ferry.runtime.PodNetwork;
import dev.ferry.runtime.PostCopy;
import dev.ferry.transfer.memory.TargetPages;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The target side of a migration: a placeholder sandbox (the "blank birth"), the incoming
 * images, the identity, the restore ("memory awakening") and the commit. {@link #abort}
 * undoes any of it and is idempotent.
 */
public final class TargetRole {
  private static final Logger LOG = LoggerFactory.getLogger(TargetRole.class);
  private final PodManager pods;
  private final Path migrationsDir;
  /** Migrations whose final (frozen) round has started arriving. */
  private final Set<String> frozenRounds = ConcurrentHashMap.newKeySet();

  boolean frozenRoundStarted(String migrationId) {
    return frozenRounds.contains(migrationId);
  }

  /** Faults injected per migration (tests only). */
  private final Map<String, Set<String>> faults = new ConcurrentHashMap<>();

  private final String listenIp;

  /**
   * How long a page pump whose connection broke is waited for: its agent may be restarted and
   * send the pages again from the frozen tree (see {@link SourceRole#resumePumps}).
   */
  static final int PUMP_RECONNECT_MS = 120_000;

  /**
   * Holds the frozen memory of migrations arriving through the page pump, and serves it to
   * CRIU: a process of its own, which outlives this agent (see {@link PageDaemon}).
   */
  private final PageDaemonClient pageDaemon;

  /** What arrived of each transfer, kept across connections so a broken one can resume. */
  private final dev.ferry.transfer.ResumableTransfers resumable = new dev.ferry.transfer.ResumableTransfers();

  dev.ferry.transfer.ResumableTransfers resumable() {
    return resumable;
  }

  /**
   * @param listenIp this host's address on the lab network, where page pumps connect
   * @param tls how this host talks to other agents: with TLS, post-copy's page client reaches the
   *     source's CRIU page server through a relay over it
   */
  public TargetRole(PodManager pods, Path stateDir, String listenIp, dev.ferry.transfer.PeerTls tls) {
    this.pods = pods;
    this.migrationsDir = stateDir.resolve("migrations");
    this.listenIp = listenIp;
    this.tls = tls;
    this.pageDaemon = new PageDaemonClient(stateDir);
  }

  private final dev.ferry.transfer.PeerTls tls;

  /** Starts this host's page daemon, unless one runs already (it outlives agents). */
  public void startPageDaemon() {
    try {
      pageDaemon.ensureRunning();
    } catch (IOException e) {
      LOG.error("no page daemon: pre-copy and hybrid migrations to this host will fail: {}", e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Opens the store that receives the frozen pod's memory from the source's page pump (pages
   * pre-copy rounds delivered are taken from those) and returns where the pump connects.
   */
  public synchronized Map<String, Object> openPageStore(String migrationId, String podName) throws IOException {
    require(migrationId, podName);
    LocalPod pod = pods.store().get(podName);
    Path dir = migrationsDir.resolve(migrationId);
    String c = pod.spec().containers().get(0).name();
    String address = pageDaemon.open(migrationId, dir.resolve("incoming").resolve("mem").resolve(c),
        dir.resolve("arrived.pages"), listenIp, SourceRole.STALL_MS, PUMP_RECONNECT_MS);
    return Map.of("pumpAddress", address);
  }


  /** Suffix of the transfer id of a pre-copy round (the final round has the bare migration id). */
  public static final String PRESYNC = ".presync";

  /**
   * Where the incoming files of a transfer land; refuses transfers nobody prepared.
   *
   * @param incremental false: a fresh start, anything received before is dropped
   */
  public Path incoming(String transferId, boolean incremental) {
    String migrationId = migrationOf(transferId);
    Names.checkId(migrationId);
    LocalPod pod = placeholderOf(migrationId);
    if (pod == null || !"placeholder".equals(pod.state())) {
      throw new IllegalStateException("no placeholder waits for migration " + migrationId);
    }
    if (!sendOf(transferId).endsWith(PRESYNC)) {
      frozenRounds.add(migrationId);
    }
    Path dir = migrationsDir.resolve(migrationId).resolve("incoming");
    if (!incremental) {
      String group = groupOf(transferId);
      synchronized (freshGroups) {
        // a retried transfer starts clean; of one sent over several streams, only its first
        // stream to arrive cleans, and the others wait for that before they write
        if (group == null || freshGroups.add(group)) {
          Files2.deleteTree(dir);
        }
      }
    }
    return dir;
  }

  /**
   * Transfers sent over several streams whose directory was cleaned ({@link #incoming}), and how
   * many of their streams ended verified ({@link #received}), by {@link #groupOf group}.
   */
  private final Set<String> freshGroups = new java.util.HashSet<>();
  private final Map<String, Integer> streamsDone = new java.util.HashMap<>();

  /**
   * One stream of a transfer sent over several: the id a {@link dev.ferry.transfer.ParallelSender}
   * lane announces, {@code SEND@ATTEMPT#k/n} (SEND the migration id, or it and {@link #PRESYNC};
   * ATTEMPT names one send of it, so that a retried send is a group of its own).
   */
  private static final java.util.regex.Pattern STREAM = java.util.regex.Pattern.compile("(.+)@[0-9a-z]+#(\\d+)/(\\d+)");

  /** The group of the streams of one send ({@code SEND@ATTEMPT}), null for a transfer over one stream. */
  static String groupOf(String transferId) {
    java.util.regex.Matcher m = STREAM.matcher(transferId);
    return m.matches() ? transferId.substring(0, transferId.lastIndexOf('#')) : null;
  }

  /** What a transfer sends: the migration id, or it and {@link #PRESYNC}, without the stream's part. */
  static String sendOf(String transferId) {
    java.util.regex.Matcher m = STREAM.matcher(transferId);
    return m.matches() ? m.group(1) : transferId;
  }

  /** The migration a transfer belongs to. */
  public static String migrationOf(String transferId) {
    String send = sendOf(transferId);
    return send.endsWith(PRESYNC) ? send.substring(0, send.length() - PRESYNC.length()) : send;
  }

  public Set<String> faults(String migrationId) {
    return faults.getOrDefault(migrationId, Set.of());
  }

  /** Creates the placeholder: same resources, sandbox with pause, network locked, no identity yet. */
  public synchronized Map<String, Object> prepare(String migrationId, PodSpec spec, List<String> injected) {
    return prepare(migrationId, spec, injected, null, null);
  }

  /**
   * Creates the placeholder ("blank birth"): sandbox with pause, a pause process per app slot
   * in a cgroup with the pod's limits, network locked, and (if given) a temporary address from
   * the IPAM that it holds while it waits; the pod's own identity comes later.
   */
  public synchronized Map<String, Object> prepare(String migrationId, PodSpec spec, List<String> injected, String tempIp,
      String tempMac) {
    PodManager.validate(spec);
    String name = spec.identity().name();
    LocalPod existing = pods.store().find(name).orElse(null);
    if (existing != null) {
      if (migrationId.equals(existing.migrationId())) {
        return Map.of("already", true);
      }
      throw ApiException.conflict("a pod named '" + name + "' already exists on this host");
    }
    pods.checkCapacity(spec);
    faults.put(migrationId, Set.copyOf(injected));
    pods.store().save(new LocalPod(spec, "placeholder", migrationId, false));
    try {
      PodNetwork net = pods.network(name);
      net.create();
      net.lock();
      if (spec.runsc()) {
        keepRunscOffline(net);
      }
      if (tempIp != null) {
        net.takeIdentity(tempIp, spec.identity().prefixLength(), tempMac);
      }
      long pausePid = pods.startSandbox(spec);
      pods.startSlots(spec, pausePid);
    } catch (RuntimeException e) {
      abort(migrationId, name);
      throw e;
    }
    LOG.info("placeholder for pod {} ready", name);
    return Map.of("placeholder", name);
  }

  /** Marks the transfer complete (called by the data server once everything verified). */
  synchronized void received(String transferId) {
    java.util.regex.Matcher m = STREAM.matcher(transferId);
    if (m.matches()) {
      String group = groupOf(transferId);
      synchronized (freshGroups) {
        if (streamsDone.merge(group, 1, Integer::sum) < Integer.parseInt(m.group(3))) {
          return; // other streams of this transfer still run
        }
        streamsDone.remove(group);
        freshGroups.remove(group);
      }
    }
    if (sendOf(transferId).endsWith(PRESYNC)) {
      return; // a pre-copy round: the final round is still to come
    }
    String migrationId = sendOf(transferId);
    if (faults(migrationId).contains("truncate-received-image")) {
      truncateLargestImage(migrationsDir.resolve(migrationId).resolve("incoming").resolve("images"));
    }
    LocalPod pod = placeholderOf(migrationId);
    if (pod != null) {
      pods.store().save(pod.withState("received", migrationId));
    }
  }

  /**
   * Fault injection for tests: the largest checkpoint image received is cut to half its length
   * after it was verified, as a failing disk would leave it; the restore must fail and the
   * migration roll back.
   */
  private static void truncateLargestImage(Path images) {
    try (var files = Files.walk(images)) {
      Path largest = files.filter(Files::isRegularFile).max(java.util.Comparator.comparingLong(p -> {
        try {
          return Files.size(p);
        } catch (IOException e) {
          return -1;
        }
      })).orElse(null);
      if (largest != null) {
        long size = Files.size(largest);
        try (var ch = java.nio.channels.FileChannel.open(largest, java.nio.file.StandardOpenOption.WRITE)) {
          ch.truncate(size / 2);
        }
        LOG.warn("injected fault: {} truncated from {} to {} bytes", largest, size, size / 2);
      }
    } catch (IOException e) {
      LOG.warn("injected fault: could not truncate an image in {}: {}", images, e.getMessage());
    }
  }

  /** Links readied by {@link #stageIdentity}, by migration: {@link #takeIdentity} brings them up. */
  private final Map<String, LinkSwitch> stagedLinks = new ConcurrentHashMap<>();

  /**
   * Readies the pod's IP and MAC on the sandbox with its link down and incoming traffic locked
   * out (the placeholder's temporary address ends here). Runs while the source still holds the
   * address: a link that is down answers for nothing. Idempotent.
   */
  public synchronized void stageIdentity(String migrationId, String podName) {
    LocalPod pod = require(migrationId, podName);
    PodIdentity id = pod.spec().identity();
    PodNetwork net = pods.network(podName);
    LinkSwitch old = stagedLinks.remove(migrationId);
    if (old != null) {
      old.close();
    }
    net.stageIdentity(id.ip(), id.prefixLength(), id.mac());
    stagedLinks.put(migrationId, net.linkSwitch());
  }

  /**
   * Checks that the pod is this migration's placeholder and that its identity is staged (stages
   * it if not): what {@link #takeIdentity} needs to be one system call.
   */
  public synchronized void readyToTake(String migrationId, String podName) {
    require(migrationId, podName);
    if (faults(migrationId).contains("refuse-identity")) {
      throw ApiException.conflict("injected fault: the target refuses to take the identity of pod " + podName);
    }
    if (!stagedLinks.containsKey(migrationId)) {
      stageIdentity(migrationId, podName);
    }
  }

  /**
   * Takes the pod's IP and MAC (the source has let go of them) behind the network lock: the
   * staged link comes up in one system call, so that the address is unanswered only for the
   * round trip from the source's release to here.
   *
   * @return when the link came up, in microseconds since the epoch
   */
  public synchronized long takeIdentity(String migrationId, String podName) {
    LinkSwitch staged = stagedLinks.get(migrationId);
    if (staged == null) {
      stageIdentity(migrationId, podName); // an agent restarted since, or a coordinator that did not stage
      staged = stagedLinks.get(migrationId);
    }
    staged.up(); // first: the pod's IP is unanswered until here (the staging checked the placeholder)
    long upAt = Laps.epochMicros();
    LocalPod pod = require(migrationId, podName);
    PodIdentity id = pod.spec().identity();
    PodNetwork net = pods.network(podName);
    closeStagedLink(migrationId);
    LOG.info("pod {} took {}: its link is up", podName, id.ip());
    // ARP is not filtered by the lock: bridges learn the MAC's new port now, while the
    // restore runs, and the client's retransmissions wait at the lock instead of a RST
    net.announce(id.ip());
    return upAt;
  }

  private void closeStagedLink(String migrationId) {
    LinkSwitch link = stagedLinks.remove(migrationId);
    if (link != null) {
      link.close();
    }
  }

  /** Page clients fetching a restored pod's memory from its source (post-copy), by migration. */
  private final Map<String, PostCopy.PageClient> pageClients = new ConcurrentHashMap<>();

  /**
   * What {@link #prepareRestore} readied for a restore, by migration: the sandbox runs, the
   * bundles are in place, the images rebuilt, and (pages through Ferry's store) CRIU's page
   * client starting. The restore then only runs CRIU.
   */
  private final Map<String, Prepared> preparedRestores = new ConcurrentHashMap<>();

  /** See {@link #preparedRestores}; {@code pageClient} is null when the restore starts its own. */
  private record Prepared(java.util.concurrent.CompletableFuture<PostCopy.PageClient> pageClient, String pageServer,
      PendingRestore pending, boolean lazy, Map<String, Long> laps) {
    /** Ends what was readied but never used (a failed or abandoned restore). */
    void discard() {
      if (pageClient != null) {
        pageClient.thenAccept(PostCopy.PageClient::kill);
      }
      if (pending != null) {
        pending.close();
      }
    }
  }

  /**
   * Readies the restore of a frozen pod whose images arrived: everything but CRIU's restore
   * itself. The coordinator calls it while the identity hand-over runs (the sandbox joins the
   * pod's staged network namespace, which takes no address of anyone), so that the restore,
   * after the hand-over, starts CRIU at once: in a warm lab the sandbox, the bundles and the
   * page client's start took 10-50 ms of the restore, inside the frozen window. Idempotent;
   * undone by {@link #abort}.
   *
   * @param ferryPages whether the memory comes through Ferry's page store (its page client can
   *     start now; CRIU's own page server on the source is named by the restore only)
   * @param lazy whether the restore will be lazy (null: not known yet). When known, the restore
   *     of a pod of one runc container is started too, up to CRIU's part ({@link PendingRestore}),
   *     which the restore call lets go.
   */
  public Map<String, Object> prepareRestore(String migrationId, String podName, boolean ferryPages, Boolean lazy)
      throws Exception {
    LocalPod pod = requireReceived(migrationId, podName);
    if (pod == null || preparedRestores.containsKey(migrationId)) {
      return Map.of("already", true);
    }
    Laps laps = new Laps();
    Prepared prepared = readyRestore(migrationId, pod, null, ferryPages, laps);
    if (lazy != null && !pod.spec().runsc() && pod.spec().containers().size() == 1) {
      ContainerSpec c = pod.spec().containers().get(0);
      Path images = incomingImages(migrationId, c);
      try {
        PendingRestore pending = pods.runtime().startRestore(pods.containerId(podName, c.name()),
            pods.store().bundle(podName, c.name()), images, restoreWork(migrationId, c), lazy);
        prepared = new Prepared(prepared.pageClient(), prepared.pageServer(), pending, lazy, prepared.laps());
        laps.lap("restoreAhead");
      } catch (RuntimeException e) {
        prepared.discard();
        throw e;
      }
    }
    preparedRestores.put(migrationId, prepared);
    LOG.info("restore of pod {} made ready: {}", podName, laps.asMap());
    return Map.of("laps", laps.asMap());
  }

  /**
   * Restores the app containers into the placeholder sandbox from the received images; with a
   * {@code pageServer} (post-copy) without their memory, which a page client then fetches.
   * What {@link #prepareRestore} readied is used, the rest done here.
   */
  public Map<String, Object> restore(String migrationId, String podName, String pageServer, boolean lazyLocal,
      boolean ferryPages) throws Exception {
    LocalPod pod = requireReceived(migrationId, podName);
    if (pod == null) {
      return Map.of("already", true);
    }
    long t0 = System.nanoTime();
    Laps laps = new Laps();
    Prepared prepared = preparedRestores.remove(migrationId);
    if (prepared == null) {
      prepared = readyRestore(migrationId, pod, pageServer, ferryPages, laps);
    }
    Path in = migrationsDir.resolve(migrationId).resolve("incoming");
    String from = prepared.pageServer() != null ? prepared.pageServer() : pageServer;
    boolean lazy = from != null || lazyLocal;
    PendingRestore pending = prepared.pending();
    if (pending != null && prepared.lazy() != lazy) {
      pending.close(); // started for another kind of restore than this call asks for
      pending = null;
    }
    java.util.concurrent.CompletableFuture<PostCopy.PageClient> pageClient = prepared.pageClient();
    if (pageClient == null && from != null) {
      pageClient = startPageClient(migrationId, pod, from, ferryPages); // post-copy: named by this call only
    }
    try {
      for (ContainerSpec c : pod.spec().containers()) {
        Path bundle = pods.store().bundle(podName, c.name());
        String cid = pods.containerId(podName, c.name());
        Path images = in.resolve("images").resolve(c.name());
        // a restore started ahead by prepareRestore (one container) only has CRIU's part left
        PendingRestore ahead = pending;
        pending = null;
        if (!lazy && ahead != null) {
          ahead.go();
        } else if (!lazy) {
          // (runsc) netstack reads the pod's IP and MAC from eth0, which take-identity configured
          pods.runtimeFor(pod.spec()).restore(cid, bundle, images, restoreWork(migrationId, c));
        } else {
          // (lazy from local images may restore several containers: one daemon each)
          PostCopy.PageClient client = pageClient != null ? awaitPageClient(pageClient)
              : pods.runtime().startPageClient(images, restoreWork(migrationId, c), from);
          pageClients.put(migrationId, client);
          pageClient = null;
          laps.lap("pageClientWait");
          try (var watch = dev.ferry.runtime.LazyRestoreWatch.start(client::alive, restoreWork(migrationId, c),
              java.time.Duration.ofSeconds(2))) {
            if (ahead != null) {
              ahead.go();
            } else {
              pods.runtime().restoreLazy(cid, bundle, images, restoreWork(migrationId, c));
            }
          }
        }
        laps.lap("runc");
      }
      // the network stays locked: it opens at the commit step, once the coordinator has made
      // the move durable. A copy that served a client before that could not be rolled back
      // without losing the writes it acknowledged.
    } finally {
      if (pageClient != null) {
        pageClient.thenAccept(PostCopy.PageClient::kill); // the restore failed before using it
      }
      if (pending != null) {
        pending.close();
      }
    }
    pods.store().save(pod.withState("restored", migrationId));
    requireRunning(pod);
    laps.lap("proof");
    long ms = (System.nanoTime() - t0) / 1_000_000;
    Map<String, Long> all = new java.util.LinkedHashMap<>(prepared.laps());
    all.putAll(laps.asMap());
    LOG.info("restored pod {} in {} ms: {}", podName, ms, all);
    // (a rebuild made ready ahead is not part of this call's time)
    return Map.of("restoreMs", ms, "rebuildMs", laps.get("rebuild"), "runcRestoreMs", laps.get("runc"),
        "laps", laps.asMap());
  }

  /**
   * Starts CRIU's page client of the pod's first container, fetching from {@code from}: Ferry's
   * page store here, or CRIU's page server on the source. That one speaks plain TCP on the
   * source's loopback: with TLS, the client reaches it through this host's relay and the source's.
   */
  private java.util.concurrent.CompletableFuture<PostCopy.PageClient> startPageClient(String migrationId, LocalPod pod,
      String from, boolean ferryPages) {
    boolean relayed = !ferryPages && tls.secure();
    ContainerSpec c = pod.spec().containers().get(0);
    Path images = incomingImages(migrationId, c);
    return java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      try {
        String server = relayed ? pageDaemon.relayToPeer(migrationId, from) : from;
        return pods.runtime().startPageClient(images, restoreWork(migrationId, c), server);
      } catch (Exception e) {
        throw new java.util.concurrent.CompletionException(e);
      }
    });
  }

  /** The pod of a migration whose images all arrived; null once it is restored. */
  private LocalPod requireReceived(String migrationId, String podName) {
    synchronized (this) {
      LocalPod pod = require(migrationId, podName);
      if ("restored".equals(pod.state())) {
        return null;
      }
      if (!"received".equals(pod.state())) {
        throw ApiException.conflict("migration " + migrationId + ": images not (completely) received; state " + pod.state());
      }
      return pod;
    }
  }

  /**
   * The restore but CRIU's part: the page client starting (when its page server is known),
   * the sandbox, the network's unlock made ready, each container's bundle and images.
   */
  private Prepared readyRestore(String migrationId, LocalPod pod, String pageServer, boolean ferryPages, Laps laps)
      throws Exception {
    String podName = pod.spec().identity().name();
    Path in = migrationsDir.resolve(migrationId).resolve("incoming");
    String from = pageServer;
    if (ferryPages) {
      try {
        from = pageDaemon.serve(migrationId, PUMP_RECONNECT_MS + 30_000); // a page may wait for the pump to come back
      } catch (IOException e) {
        throw ApiException.conflict("migration " + migrationId + ": " + e.getMessage());
      }
    }
    // CRIU's page-client daemon of the first container starts while the sandbox is readied
    java.util.concurrent.CompletableFuture<PostCopy.PageClient> pageClient =
        from != null ? startPageClient(migrationId, pod, from, ferryPages) : null;
    boolean ready = false;
    try {
      long pausePid = pods.startSandbox(pod.spec());
      PodNetwork net = pods.network(podName);
      if (!pod.spec().runsc()) {
        prepareUnlock(migrationId, net);
      }
      laps.lap("sandbox");
      for (ContainerSpec c : pod.spec().containers()) {
        Path bundle = pods.store().bundle(podName, c.name());
        move(in.resolve("bundles").resolve(c.name()), bundle);
        pods.configureApp(bundle, pod.spec(), c, pausePid);
        String cid = pods.containerId(podName, c.name());
        pods.runtimeFor(pod.spec()).destroy(cid);
        Path images = in.resolve("images").resolve(c.name());
        // the sandbox's lock keeps incoming packets out until the tree runs; CRIU's own lock and
        // unlock around the restore would repeat it with five iptables runs in the frozen window
        if (!pod.spec().runsc()) {
          dev.ferry.runtime.CriuInventory.skipNetworkLock(images);
        }
        laps.lap("bundles");
        TargetPages.Rebuilt rebuilt = TargetPages.rebuild(in.resolve("mem").resolve(c.name()), images);
        if (rebuilt.images() > 0) {
          laps.lap("rebuild");
          LOG.info("rebuilt {} pages image(s) of {}: {} pages kept from pre-copy, {} sent frozen", rebuilt.images(),
              c.name(), rebuilt.keptPages(), rebuilt.literalPages());
          Files2.deleteTree(in.resolve("mem").resolve(c.name()));
        }
        laps.lap("other");
      }
      ready = true;
      return new Prepared(pageClient, ferryPages ? from : null, null, false, laps.asMap());
    } finally {
      if (!ready && pageClient != null) {
        pageClient.thenAccept(PostCopy.PageClient::kill); // never to be used
      }
    }
  }

  /** Where a container's checkpoint images arrive. */
  private Path incomingImages(String migrationId, ContainerSpec c) {
    return migrationsDir.resolve(migrationId).resolve("incoming").resolve("images").resolve(c.name());
  }

  private Path restoreWork(String migrationId, ContainerSpec c) {
    return migrationsDir.resolve(migrationId).resolve("work-restore").resolve(c.name());
  }

  private static PostCopy.PageClient awaitPageClient(java.util.concurrent.CompletableFuture<PostCopy.PageClient> f)
      throws Exception {
    try {
      return f.get();
    } catch (java.util.concurrent.ExecutionException e) {
      throw e.getCause() instanceof Exception ex ? ex : e;
    }
  }

  /** Proves the pod runs, opens its network and makes it an ordinary pod of this host. */
  public synchronized Map<String, Object> commit(String migrationId, String podName) {
    LocalPod pod = pods.store().get(podName);
    if ("running".equals(pod.state()) && pod.migrationId() == null) {
      // committed before (this agent may have restarted since): finish what followed it
      inBackground(() -> pods.removeSlots(podName, pod.spec()));
      return Map.of("already", true);
    }
    require(migrationId, podName);
    Laps laps = new Laps();
    requireRunning(pod);
    laps.lap("check");
    PodNetwork net = pods.network(podName);
    unlock(migrationId, net);
    if (pod.spec().runsc()) {
      bringRunscOnline(net, pod.spec().identity().ip());
    }
    laps.lap("unlock");
    if (!pod.spec().runsc()) {
      sendWhatSocketsHold(pod);
      laps.lap("kick");
    }
    pods.store().save(new LocalPod(pod.spec(), "running", null, false));
    laps.lap("record");
    // off the frozen path: a second announcement, and the images are no longer needed
    boolean pagesPending = pageClients.containsKey(migrationId);
    inBackground(() -> {
      if (!pod.spec().runsc()) { // (a runsc pod announced itself as its port came up)
        net.announce(pod.spec().identity().ip());
      }
      pods.removeSlots(podName, pod.spec()); // the placeholder's pause slots are replaced by the pod
      if (!pagesPending) {
        MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host());
      }
    });
    faults.remove(migrationId);
    resumable.forget(migrationId);
    LOG.info("pod {} committed on this host: {}", podName, laps.asMap());
    return Map.of("committed", true, "laps", laps.asMap());
  }

  /**
   * Right after the unlock: what a restored socket holds to send (a reply to a request the pod
   * read before it froze, written once the tree ran, while outgoing traffic was still locked)
   * leaves now instead of at the socket's probe timer (200 ms or more): {@code TCP_REPAIR} off,
   * set on each socket of the pod's processes ({@link dev.ferry.runtime.ForeignSockets}), sends a
   * window probe, and the client's answer to it lets the socket send what it holds (~0.5 ms for
   * a pod of a few sockets). Best effort: a socket left out sends at its own timer.
   */
  private void sendWhatSocketsHold(LocalPod pod) {
    for (ContainerSpec c : pod.spec().containers()) {
      for (long pid : pods.runtime().processes(pods.containerId(pod.name(), c.name()))) {
        try {
          dev.ferry.runtime.ForeignSockets.releaseRepair(pid);
        } catch (IOException | RuntimeException e) {
          LOG.warn("sockets of pid {} of pod {} not prompted after the unlock: {}", pid, pod.name(), e.getMessage());
        }
      }
    }
  }

  /**
   * Post-copy: waits until the page client has fetched every page of the restored pod.
   * Fails if it could not: the pod's memory is then incomplete.
   */
  public Map<String, Object> awaitPages(String migrationId, String podName) throws Exception {
    PostCopy.PageClient client = pageClients.get(migrationId);
    if (client == null) {
      // this agent restarted since the restore: CRIU's page daemon, which it started, may still
      // be filling the pod's memory; its command line names the migration's work directory
      Path work = migrationsDir.resolve(migrationId).resolve("work-restore");
      long waited = PostCopy.awaitDaemonsUnder(work, java.time.Duration.ofMinutes(30));
      pageDaemon.close(migrationId, null); // the page daemon served them, if the restore used it
      try {
        if (Files.exists(migrationsDir.resolve(migrationId))) {
          MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host()); // its images are no longer needed
        }
      } catch (RuntimeException e) {
        // the commit's own clean-up may be removing it at this very moment: that one finishes it
        LOG.info("images of {} not removed here ({}); the commit's clean-up does", migrationId, e.getMessage());
      }
      return Map.of("already", true, "afterRestart", waited >= 0, "waitedMs", Math.max(0, waited));
    }
    long pages = client.awaitAllPages(java.time.Duration.ofMinutes(30));
    pageClients.remove(migrationId);
    pageDaemon.close(migrationId, null);
    MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host());
    LOG.info("all {} pages of pod {} arrived, {} ms after the page client started", pages, podName, client.elapsedMs());
    return Map.of("pages", pages, "ms", client.elapsedMs());
  }

  /**
   * (runsc) A restored sandbox's netstack answers clients whatever the namespace's iptables say
   * (it reads eth0 through a packet socket), so Ferry's network lock cannot hold it back until
   * the commit point: the placeholder's bridge port (the host end of its veth) stays down
   * instead, from its birth until {@link #bringRunscOnline} at the commit. A copy that was
   * rolled back never served anyone.
   */
  private static void keepRunscOffline(PodNetwork net) {
    try (LinkSwitch port = net.hostLinkSwitch()) {
      port.down();
    }
  }

  /** (runsc) The commit point is recorded: the bridge port comes up and the pod announces itself. */
  private static void bringRunscOnline(PodNetwork net, String ip) {
    try (LinkSwitch port = net.hostLinkSwitch()) {
      port.up();
    }
    net.announceFromSandbox(ip);
  }

  private void requireRunning(LocalPod pod) {
    for (ContainerSpec c : pod.spec().containers()) {
      var st = pods.runtimeFor(pod.spec()).state(pods.containerId(pod.name(), c.name()));
      if (!st.running() || !ProcessHandle.of(st.pid()).map(ProcessHandle::isAlive).orElse(false)) {
        throw ApiException.conflict("container " + c.name() + " of pod " + pod.name() + " is " + st.status() + " after restore");
      }
    }
  }

  /** Commits' unlocks made ready during the restore (see {@link PodNetwork#prepareUnlock}), by migration. */
  private final Map<String, java.util.concurrent.CompletableFuture<PodNetwork.PreparedUnlock>> unlocksAhead =
      new ConcurrentHashMap<>();

  /** Starts the commit's unlock in the background, while the tree is restored. */
  private void prepareUnlock(String migrationId, PodNetwork net) {
    dropPreparedUnlock(migrationId); // a restore tried again
    unlocksAhead.put(migrationId, java.util.concurrent.CompletableFuture.supplyAsync(() -> {
      try {
        return net.prepareUnlock();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }));
  }

  /** Opens the pod's network at the commit: with the unlock made ready during the restore if there is one. */
  private void unlock(String migrationId, PodNetwork net) {
    java.util.concurrent.CompletableFuture<PodNetwork.PreparedUnlock> ahead = unlocksAhead.remove(migrationId);
    if (ahead == null) {
      net.unlock(); // (an agent restarted since the restore)
      return;
    }
    try (PodNetwork.PreparedUnlock u = ahead.get(10, java.util.concurrent.TimeUnit.SECONDS)) {
      if (!u.apply()) {
        LOG.warn("the unlock made ready for migration {} failed; the pod's network was unlocked the usual way", migrationId);
      }
    } catch (Exception e) {
      LOG.warn("the unlock made ready for migration {} failed ({}); unlocking the usual way", migrationId, e.toString());
      net.unlock();
    }
  }

  private void dropPreparedUnlock(String migrationId) {
    java.util.concurrent.CompletableFuture<PodNetwork.PreparedUnlock> ahead = unlocksAhead.remove(migrationId);
    if (ahead != null) {
      ahead.thenAccept(PodNetwork.PreparedUnlock::close);
    }
  }

  /** Removes the placeholder or the restored copy and every file of the migration. Idempotent. */
  public synchronized void abort(String migrationId, String podName) {
    dropPreparedUnlock(migrationId);
    Prepared prepared = preparedRestores.remove(migrationId);
    if (prepared != null) {
      prepared.discard(); // before the pod's containers go: a restore started ahead ends first
    }
    PostCopy.PageClient client = pageClients.remove(migrationId);
    if (client != null) {
      client.kill();
    }
    // one whose start failed half-way (its starter killed) lives on, orphaned: by its directory
    int orphans = PostCopy.killDaemonsUnder(migrationsDir.resolve(migrationId).resolve("work-restore"));
    if (orphans > 0) {
      LOG.info("{} page daemon(s) of pod {} left by a failed restore killed", orphans, podName);
    }
    closeStagedLink(migrationId);
    pageDaemon.close(migrationId, "migration aborted");
    LocalPod pod = pods.store().find(podName).orElse(null);
    if (pod != null && migrationId.equals(pod.migrationId())) {
      PodNetwork net = pods.network(podName);
      if (net.currentIp() != null) {
        // a restored copy dies silently: no FIN or RST may reach the client, whose
        // connection lives on in the source
        net.lock();
      }
      net.releaseIdentity();
      pods.destroy(podName, pod.spec());
      LOG.info("placeholder of pod {} removed", podName);
    }
    MigrationDirs.remove(migrationsDir.resolve(migrationId), pods.host());
    resumable.forget(migrationId);
    faults.remove(migrationId);
    frozenRounds.remove(migrationId);
  }

  /**
   * At start-up: placeholders left by a crash are removed (their migration's coordinator rolls
   * back when it finds this agent without them).
   */
  public synchronized void removeLeftovers() {
    for (LocalPod p : pods.store().all()) {
      if (p.migrationId() != null && Set.of("placeholder", "received").contains(p.state())) {
        LOG.warn("removing placeholder of pod {} left by interrupted migration {}", p.name(), p.migrationId());
        abort(p.migrationId(), p.name());
      } else if (p.migrationId() != null && "restored".equals(p.state())) {
        // restored, network still locked: the migration may have been committed meanwhile; the
        // coordinator's recovery either commits it here or aborts it
        LOG.warn("pod {} restored by interrupted migration {} is kept for the coordinator to commit or abort", p.name(),
            p.migrationId());
      }
    }
  }

  private static void inBackground(Runnable r) {
    Thread t = new Thread(() -> {
      try {
        r.run();
      } catch (RuntimeException e) {
        LOG.warn("background step failed: {}", e.getMessage());
      }
    }, "ferry-background");
    t.setDaemon(true);
    t.start();
  }

  private LocalPod placeholderOf(String migrationId) {
    return pods.store().all().stream().filter(p -> migrationId.equals(p.migrationId())).findFirst().orElse(null);
  }

  private LocalPod require(String migrationId, String podName) {
    LocalPod pod = pods.store().get(podName);
    if (!migrationId.equals(pod.migrationId())) {
      throw ApiException.conflict("pod '" + podName + "' here is not the placeholder of migration " + migrationId);
    }
    return pod;
  }

  private static void move(Path from, Path to) {
    try {
      if (Files.exists(from)) {
        Files2.deleteTree(to);
        Files.createDirectories(to.getParent());
        Files.move(from, to);
      } else if (!Files.exists(to)) {
        throw ApiException.conflict("received images lack " + from.getFileName());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
