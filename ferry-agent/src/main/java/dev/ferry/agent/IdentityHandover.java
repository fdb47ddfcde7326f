package dev.ferry.agent;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * The identity hand-over between the source's agent and the target's, over the target's data
 * port, so that between the source going silent for the pod's IP and the target answering for it
 * there is one message on a connection that is already open:
 *
 * <pre>
 *   source: "FERRY-IDNT-1\n" UTF(migrationId) UTF(pod)
 *   target: READY | ERROR UTF(reason)       (the pod is this migration's placeholder, its identity staged)
 *   source: (its link goes down) GO
 *   target: (its link comes up) TAKEN long(upAtMicros) | ERROR UTF(reason)
 * </pre>
 */
final class IdentityHandover {
  /** As long as the transfer's magic: the data server tells the two apart by these bytes. */
  static final String MAGIC = "FERRY-IDNT-1\n";
  static final byte READY = 'R';
  static final byte GO = 'G';
  static final byte TAKEN = 'T';
  static final byte ERROR = 'E';

  private IdentityHandover() {}

  /** What went silent, and when the target answered, by each agent's clock (microseconds since the epoch). */
  record Times(long downAtMicros, long upAtMicros, java.util.Map<String, Long> laps) {
    Times(long downAtMicros, long upAtMicros) {
      this(downAtMicros, upAtMicros, java.util.Map.of());
    }
  }

  /** Something that makes the source silent and says when it did. */
  interface GoSilent {
    long now();
  }

  /**
   * Source side, on a connection to the target's data port: readies the target, goes silent,
   * has the target take over. A failure after
   * {@code goSilent} leaves the target's state unknown: the caller's rollback must make the
   * target let go before the source takes the identity back.
   */
  static Times handOver(Socket connection, String migrationId, String pod, GoSilent goSilent, Laps laps)
      throws IOException {
    try (Socket s = connection) {
      s.setSoTimeout(10_000);
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      DataInputStream in = new DataInputStream(s.getInputStream());
      out.write(MAGIC.getBytes(StandardCharsets.US_ASCII));
      out.writeUTF(migrationId);
      out.writeUTF(pod);
      out.flush();
      expect(in, READY, "was not ready to take the identity");
      laps.lap("ready");
      long downAt = goSilent.now();
      laps.lap("down");
      out.writeByte(GO);
      out.flush();
      expect(in, TAKEN, "did not take the identity");
      long upAt = in.readLong();
      laps.lap("taken");
      return new Times(downAt, upAt);
    }
  }

  private static void expect(DataInputStream in, byte wanted, String what) throws IOException {
    byte b = in.readByte();
    if (b == ERROR) {
      throw new IOException("target " + what + ": " + in.readUTF());
    }
    if (b != wanted) {
      throw new IOException("target " + what + ": unexpected answer " + b);
    }
  }

  /** Target side, after the data server read {@link #MAGIC}. */
  static void serve(DataInputStream in, DataOutputStream out, TargetRole target) throws IOException {
    String migrationId = in.readUTF();
    String pod = in.readUTF();
    try {
      target.readyToTake(migrationId, pod);
    } catch (RuntimeException e) {
      refuse(out, e);
      return;
    }
    out.writeByte(READY);
    out.flush();
    if (in.readByte() != GO) {
      throw new IOException("identity hand-over of " + migrationId + ": the source did not say go");
    }
    long upAt;
    try {
      upAt = target.takeIdentity(migrationId, pod);
    } catch (RuntimeException e) {
      refuse(out, e);
      return;
    }
    out.writeByte(TAKEN);
    out.writeLong(upAt);
    out.flush();
  }

  private static void refuse(DataOutputStream out, RuntimeException e) throws IOException {
    out.writeByte(ERROR);
    out.writeUTF(String.valueOf(e.getMessage()));
    out.flush();
  }
}
