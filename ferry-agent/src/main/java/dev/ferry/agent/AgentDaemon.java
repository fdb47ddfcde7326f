package dev.ferry.agent;

import dev.ferry.runtime.CapabilityProbe;
import dev.ferry.runtime.CriuBinary;
import dev.ferry.runtime.HostCapabilities;
import dev.ferry.runtime.RuncRuntime;
import java.nio.file.Files;
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
    HostCapabilities caps = CapabilityProbe.probe(CriuBinary.locate());
    LOG.info("agent {} starting: {}", config.host(), caps.asMap());
    RuncRuntime runtime = new RuncRuntime(caps.criuPath(), caps.criuEnv());
    PodStore store = new PodStore(config.stateDir());
    PodManager pods = new PodManager(config, runtime, store);
    SourceRole source = new SourceRole(pods, config.stateDir(), config.listenIp());
    TargetRole target = new TargetRole(pods, config.stateDir(), config.listenIp());
    target.removeLeftovers();
    AgentApi api = new AgentApi(config, caps, pods, source, target);
    try (DataServer data = new DataServer(config.listenIp(), config.dataPort(), target);
        AgentServer server = new AgentServer(config, api)) {
      LOG.info("agent {} ready: API on {}{}, images on {}:{}", config.host(), config.socket(),
          config.apiPort() > 0 ? " and " + config.listenIp() + ":" + config.apiPort() : "", config.listenIp(), config.dataPort());
      Warmup.inBackground(config.stateDir());
      new CountDownLatch(1).await();
    }
  }
}
