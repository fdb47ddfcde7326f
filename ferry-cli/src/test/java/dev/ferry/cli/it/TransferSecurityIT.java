package dev.ferry.cli.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.MigrationReport;
import dev.ferry.cli.demo.DemoRunner;
import dev.ferry.lab.Lab;
import dev.ferry.lab.LabConfig;
import dev.ferry.runtime.NetnsSocket;
import dev.ferry.transfer.ImageSender;
import dev.ferry.transfer.LabCa;
import dev.ferry.transfer.PeerTls;
import dev.ferry.transfer.TransferProgress;
import dev.ferry.transfer.TransferSource;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Agents' data ports speak mutual TLS with the lab's CA only: a peer with a certificate of
 * another CA, or none, is refused in the handshake; a peer of the lab's CA gets through to the
 * agent (which then refuses a transfer no migration expects). Nothing of any of them lands.
 */
class TransferSecurityIT {
  @TempDir Path tmp;

  /** Sends a small image directory from host-a's namespace to host-b's data port as {@code tls}. */
  private static void sendAs(PeerTls tls, LabConfig.HostEntry a, LabConfig.HostEntry b, Path src, String id)
      throws Exception {
    try (Socket c = NetnsSocket.inNamespace(a.netns(), () -> tls.connect(b.ip() + ":" + b.dataPort(), 5000))) {
      new ImageSender(false).send(id, List.of(new TransferSource(src, "images")), c.getOutputStream(), c.getInputStream(),
          new TransferProgress());
    }
  }

  @Test
  void theDataPortRefusesPeersTheLabsCaDidNotSignAndKeysAreRootOnly() throws Exception {
    try (TestLab t = TestLab.upWithTls()) {
      LabConfig.HostEntry a = t.lab.config().host("host-a");
      LabConfig.HostEntry b = t.lab.config().host("host-b");
      Path src = Files.createDirectories(tmp.resolve("src"));
      Files.writeString(src.resolve("pages-1.img"), "secret memory");
      Path hostTls = Lab.tlsDir(b);
      assertThat(Files.getPosixFilePermissions(hostTls.resolve(PeerTls.KEY)))
          .isEqualTo(PosixFilePermissions.fromString("rw-------"));
      assertThat(Files.getPosixFilePermissions(t.lab.config().stateDir().resolve("ca").resolve("ca.key")))
          .isEqualTo(PosixFilePermissions.fromString("rw-------"));

      // a stranger: a certificate of another CA, for host-a's own name and address
      LabCa.ensure(tmp.resolve("other-ca"), "not the lab").issue(tmp.resolve("stranger"), "host-a", a.ip());
      PeerTls stranger = PeerTls.load(tmp.resolve("stranger"));
      assertThatThrownBy(() -> sendAs(stranger, a, b, src, "m-20261127-000000-0001"))
          .as("another CA's certificate").isInstanceOf(java.io.IOException.class);
      // no certificate at all: plain TCP to a TLS port
      assertThatThrownBy(() -> sendAs(PeerTls.PLAIN, a, b, src, "m-20261127-000000-0002"))
          .as("no certificate").isInstanceOf(java.io.IOException.class);

      // host-a's own identity gets in: the agent answers (it refuses a transfer nobody expects,
      // which shows it read the request: the TLS layer let the peer through)
      assertThatThrownBy(() -> sendAs(PeerTls.load(Lab.tlsDir(a)), a, b, src, "m-20261127-000000-0003"))
          .hasMessageContaining("target refused the transfer");
      // nothing of any of the three landed on host-b
      Path migrations = b.stateDir().resolve("migrations");
      for (String id : List.of("m-20261127-000000-0001", "m-20261127-000000-0002", "m-20261127-000000-0003")) {
        assertThat(migrations.resolve(id)).as("what " + id + " left on host-b").doesNotExist();
      }
    }
  }

  @Test
  void redisUnderLoadMigratesOverMutualTls() throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    MigrationReport r = new DemoRunner(lab, System.out, List.of()).strategy("cold").tls(true)
        .afterMigration((l, c, rep) -> {
          try (var log = Files.lines(l.config().host("host-b").logFile())) {
            assertThat(log.filter(x -> x.contains("AgentDaemon: agent host-b ready")).toList()).singleElement()
                .satisfies(x -> assertThat(x).contains("over mutual TLS"));
          }
        })
        .run();
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    TestLab.assertInvariants(r);
    TestLab.assertNothingLeft(lab);
  }
}
