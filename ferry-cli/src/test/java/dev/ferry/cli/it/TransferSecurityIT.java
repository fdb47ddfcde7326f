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

  /**
   * The app's memory, secrets included, never crosses between the hosts in clear: a random
   * token planted in Redis before the migration is looked for in every byte that host-a and
   * host-b sent each other (tcpdump on the lab's bridge). Post-copy's pages come through CRIU's
   * page server (relayed over TLS), hybrid's through Ferry's page pump and pre-copy rounds. The
   * same migration without TLS is the control: there the token must be found, or the capture
   * proves nothing.
   */
  @org.junit.jupiter.params.ParameterizedTest(name = "{0}, TLS {1}")
  @org.junit.jupiter.params.provider.CsvSource({"postcopy, true", "hybrid, true", "postcopy, false"})
  void theAppsMemoryNeverCrossesBetweenHostsInClear(String strategy, boolean tls) throws Exception {
    TestLab.assumeHostReady();
    String lab = TestLab.newName();
    String token = "ferry-secret-" + java.util.UUID.randomUUID();
    Path pcap = tmp.resolve("hosts.pcap");
    Process[] capture = new Process[1];
    MigrationReport r;
    try {
      r = new DemoRunner(lab, System.out, List.of()).strategy(strategy).budget(0, true, "proceed").tls(tls)
          .beforeMigration((l, podIp) -> {
            plant(l, podIp, token);
            capture[0] = captureBetweenHosts(l, pcap);
          })
          .afterMigration((l, c, rep) -> stop(capture[0]))
          .run();
    } finally {
      if (capture[0] != null) {
        capture[0].destroyForcibly();
      }
    }
    DemoRunner.printSummary(r, System.out);
    assertThat(r.outcome).isEqualTo("migrated");
    assertThat(r.strategy).isEqualTo(strategy);
    assertThat(r.transport).isEqualTo(tls ? "mutual TLS" : "plain TCP");
    TestLab.assertInvariants(r);
    byte[] seen = Files.readAllBytes(pcap);
    assertThat(seen.length).as("bytes captured between the hosts (the pod's memory went that way)")
        .isGreaterThan(1 << 20);
    int found = occurrences(seen, token.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    if (tls) {
      assertThat(found).as("the planted secret in clear between the hosts").isZero();
    } else {
      assertThat(found).as("the planted secret in clear between the hosts (control, without TLS)").isPositive();
    }
    TestLab.assertNothingLeft(lab);
  }

  /** SET ferry:secret to 256 KiB of {@code token} over and over, from the client's namespace. */
  private static void plant(Lab lab, String podIp, String token) throws Exception {
    StringBuilder v = new StringBuilder();
    while (v.length() < 256 * 1024) {
      v.append(token).append(' ');
    }
    byte[] value = v.toString().getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    try (Socket s = NetnsSocket.inNamespace(lab.config().clientNs(), () -> new Socket(podIp, 6379))) {
      s.setSoTimeout(10_000);
      java.io.OutputStream o = s.getOutputStream();
      o.write(("*3\r\n$3\r\nSET\r\n$12\r\nferry:secret\r\n$" + value.length + "\r\n")
          .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      o.write(value);
      o.write("\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
      o.flush();
      byte[] answer = s.getInputStream().readNBytes(5);
      assertThat(new String(answer, java.nio.charset.StandardCharsets.US_ASCII)).isEqualTo("+OK\r\n");
    }
  }

  /** tcpdump in the bridge's namespace of every packet between host-a and host-b, whole, to {@code pcap}. */
  private static Process captureBetweenHosts(Lab lab, Path pcap) throws Exception {
    String a = lab.config().host("host-a").ip();
    String b = lab.config().host("host-b").ip();
    Process p = new ProcessBuilder(dev.ferry.runtime.Netns.in(lab.config().bridgeNs(), "tcpdump", "-i", "any", "-n",
        "-s", "0", "-U", "-w", pcap.toString(), "host " + a + " and host " + b)).redirectOutput(
        ProcessBuilder.Redirect.DISCARD).start();
    java.io.BufferedReader err = new java.io.BufferedReader(
        new java.io.InputStreamReader(p.getErrorStream(), java.nio.charset.StandardCharsets.UTF_8));
    String line = err.readLine();
    for (int i = 0; i < 5 && line != null && !line.contains("listening"); i++) {
      line = err.readLine();
    }
    if (line == null || !line.contains("listening")) {
      p.destroyForcibly();
      throw new IllegalStateException("tcpdump did not start in " + lab.config().bridgeNs() + ": " + line);
    }
    Thread drain = new Thread(() -> {
      try {
        err.transferTo(java.io.Writer.nullWriter());
      } catch (java.io.IOException e) {
        // ended
      }
    });
    drain.setDaemon(true);
    drain.start();
    return p;
  }

  private static void stop(Process capture) throws InterruptedException {
    if (capture != null) {
      capture.destroy(); // SIGTERM: tcpdump writes what it holds and ends
      assertThat(capture.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).as("tcpdump ended").isTrue();
    }
  }

  private static int occurrences(byte[] hay, byte[] needle) {
    int n = 0;
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      n++;
    }
    return n;
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
