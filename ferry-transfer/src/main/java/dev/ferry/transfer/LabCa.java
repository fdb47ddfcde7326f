package dev.ferry.transfer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

/**
 * A lab's certificate authority: a P-256 key and a self-signed certificate made with {@code
 * openssl}, and the identities it issues to hosts (a key and a certificate naming the host and
 * its address), in the files {@link PeerTls#load} reads. Keys are readable by root only.
 */
public final class LabCa {
  private static final String CA_KEY = "ca.key";
  private static final int DAYS = 3650;

  private final Path dir;

  private LabCa(Path dir) {
    this.dir = dir;
  }

  /** The CA in {@code dir}, made now (named {@code name}) if it does not exist yet. */
  public static LabCa ensure(Path dir, String name) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    if (!Files.exists(dir.resolve(CA_KEY)) || !Files.exists(dir.resolve(PeerTls.CA))) {
      openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
          CA_KEY, "-out", PeerTls.CA, "-days", Integer.toString(DAYS), "-subj", "/CN=" + name);
    }
    return new LabCa(dir);
  }

  /**
   * Gives {@code hostDir} the CA's certificate and, if it has none yet, a key and a certificate
   * for {@code host} at {@code ip}, signed by this CA.
   */
  public void issue(Path hostDir, String host, String ip) throws IOException {
    Files.createDirectories(hostDir);
    Files.setPosixFilePermissions(hostDir, PosixFilePermissions.fromString("rwx------"));
    Files.copy(dir.resolve(PeerTls.CA), hostDir.resolve(PeerTls.CA), StandardCopyOption.REPLACE_EXISTING);
    if (Files.exists(hostDir.resolve(PeerTls.KEY)) && Files.exists(hostDir.resolve(PeerTls.CERT))) {
      return;
    }
    Path csr = hostDir.resolve("host.csr");
    Path ext = hostDir.resolve("host.ext");
    openssl(hostDir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", PeerTls.KEY,
        "-out", csr.toString(), "-subj", "/CN=" + host);
    Files.writeString(ext, "subjectAltName=DNS:" + host + ",IP:" + ip + "\nextendedKeyUsage=serverAuth,clientAuth\n");
    openssl(hostDir, "x509", "-req", "-in", csr.toString(), "-CA", dir.resolve(PeerTls.CA).toString(), "-CAkey",
        dir.resolve(CA_KEY).toString(), "-CAcreateserial", "-out", PeerTls.CERT, "-days", Integer.toString(DAYS),
        "-extfile", ext.toString());
    Files.delete(csr);
    Files.delete(ext);
  }

  private static void openssl(Path cwd, String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("openssl"));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (p.waitFor() != 0) {
        throw new IOException("openssl " + args[0] + " failed in " + cwd + ": " + out.strip()
            + " (is openssl installed? scripts/setup-host.sh installs it)");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while running openssl");
    }
    for (String f : List.of(CA_KEY, PeerTls.KEY)) {
      if (Files.exists(cwd.resolve(f))) {
        Files.setPosixFilePermissions(cwd.resolve(f), PosixFilePermissions.fromString("rw-------"));
      }
    }
  }
}
