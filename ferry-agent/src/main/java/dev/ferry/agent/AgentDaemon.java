package dev.ferry.agent;

import dev.ferry.runtime.CapabilityProbe;
import dev.ferry.runtime.CriuBinary;
import dev.ferry.runtime.HostCapabilities;
import dev.ferry.runtime.RuncRuntime;
import dev.ferry.transfer.PeerTls;
import dev.ferry.transfer.RateLimiter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The agent process: probe the host, clean up after a crash, serve the API until killed. */
public final class AgentDaemon {
  private static final Logger LOG = LoggerFactory.getLogger(AgentDaemon.class);

  private AgentDaemon() {}

  /** Runs the agent; returns only if start-up fails. */
  public static void run(AgentConfig config) throws Exception {
    Files.createDirectories(config.stateDir());
    HostCapabilities caps = CapabilityProbe.probe(CriuBinary.locate())
        .withRunsc(CapabilityProbe.probeRunsc(dev.ferry.runtime.RunscRuntime.locate()));
    LOG.info("agent {} starting: {}", config.host(), caps.asMap());
    // runc's masked directories are bound from this empty tmpfs at restores, not archived by CRIU
    RuncRuntime runtime = new RuncRuntime(caps.criuPath(), caps.criuEnv())
        .withMaskedMounts(dev.ferry.runtime.MaskedMounts.mountAt(config.stateDir().resolve("masked")));
    PodStore store = new PodStore(config.stateDir());
    // runsc's own state (its --root) lives with the agent's, so that the lab's removal takes it too
    dev.ferry.runtime.RunscRuntime runsc = caps.runsc().usable()
        ? new dev.ferry.runtime.RunscRuntime(caps.runsc().path(), config.stateDir().resolve("runsc")) : null;
    PodManager pods = new PodManager(config, runtime, store).withRunsc(runsc, caps.runsc().unusableReason());
    Path tlsDir = config.stateDir().resolve("tls");
    PeerTls tls = Files.exists(tlsDir.resolve(PeerTls.KEY)) ? PeerTls.load(tlsDir) : PeerTls.PLAIN;
    if (!tls.secure()) {
      LOG.warn("no TLS identity in {}: images and memory pages travel to and from other agents in clear", tlsDir);
    }
    // published in the state directory: the page daemon's relays of CRIU's page server count against it too
    RateLimiter hostCap = RateLimiter.publish(config.stateDir().resolve(PageDaemon.HOST_CAP_FILE),
        config.hostBandwidthBytesPerSecond());
    SourceRole source = new SourceRole(pods, config.stateDir(), config.listenIp(), tls, hostCap, config.transferStreams());
    if (config.hostBandwidthBytesPerSecond() > 0) {
      LOG.info("transfers from this host are capped at {} MB/s together", config.hostBandwidthBytesPerSecond() / 1_000_000);
    }
    if (config.transferStreams() > 1) {
      LOG.info("transfers from this host use {} connections each", config.transferStreams());
    }
    TargetRole target = new TargetRole(pods, config.stateDir(), config.listenIp(), tls);
    target.removeLeftovers();
    target.startPageDaemon();
    source.resumePumps();
    AgentApi api = new AgentApi(config, caps, pods, source, target);
    try (DataServer data = new DataServer(tls.listen(config.listenIp(), config.dataPort(), 50), target);
        AgentServer server = new AgentServer(config, api)) {
      LOG.info("agent {} ready: API on {}{}, images on {}:{} over {}", config.host(), config.socket(),
          config.apiPort() > 0 ? " and " + config.listenIp() + ":" + config.apiPort() : "", config.listenIp(), config.dataPort(),
          tls);
      Warmup.inBackground(config.stateDir(), tls);
      new CountDownLatch(1).await();
    }
  }
}
