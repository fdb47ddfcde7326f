package dev.ferry.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The page daemon as the agent uses it: a process of its own, found again by a second client
 * (an agent that restarted), serving a migration's store until it is closed, and gone once the
 * agent's state directory is removed.
 */
class PageDaemonTest {
  @TempDir Path tmp;

  @Test
  void outlivesItsClientServesStoresAndEndsWithTheStateDirectory() throws Exception {
    Path state = Files.createDirectories(tmp.resolve("host-b"));
    PageDaemonClient agent = new PageDaemonClient(state);
    agent.ensureRunning();
    long pid = daemonPid(state).orElseThrow();
    try {
      String pump = agent.open("m-1", state.resolve("no-rounds"), state.resolve("arrived.pages"), "127.0.0.1", 5000, 5000);
      assertThat(pump).startsWith("127.0.0.1:");
      try (Socket s = new Socket("127.0.0.1", Integer.parseInt(pump.split(":")[1]))) {
        assertThat(s.isConnected()).as("the pump's port listens").isTrue();
      }
      // a restarted agent finds the same daemon and the same store
      PageDaemonClient restarted = new PageDaemonClient(state);
      restarted.ensureRunning();
      assertThat(daemonPid(state)).contains(pid);
      assertThat(restarted.open("m-1", state.resolve("no-rounds"), state.resolve("arrived.pages"), "127.0.0.1", 5000, 5000))
          .isEqualTo(pump);
      assertThat(restarted.serve("m-1", 1000)).startsWith("127.0.0.1:");
      restarted.close("m-1", "migration aborted");
      assertThatThrownBy(() -> restarted.serve("m-1", 1000)).isInstanceOf(IOException.class)
          .hasMessageContaining("no page store");
    } finally {
      dev.ferry.runtime.Files2.deleteTree(state);
    }
    ProcessHandle h = ProcessHandle.of(pid).orElse(null);
    if (h != null) {
      assertThat(h.onExit().get(15, java.util.concurrent.TimeUnit.SECONDS).isAlive())
          .as("the daemon ends once its state directory is gone").isFalse();
    }
  }

  private static Optional<Long> daemonPid(Path state) {
    return dev.ferry.runtime.Procs.withCommandLineContaining(PageDaemon.class.getName(), state.toString()).stream()
        .map(ProcessHandle::pid)
        .findFirst();
  }
}
