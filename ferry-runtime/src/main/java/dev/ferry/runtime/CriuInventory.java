package dev.ferry.runtime;

import com.google.protobuf.UnknownFieldSet;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * CRIU's {@code inventory.img}: the image set's header (images/inventory.proto), the
 * inventory magic and one length-prefixed {@code inventory_entry}. Ferry edits one
 * field of it, the network-lock method the restore is to use; every other field is kept as it
 * was, byte for byte in meaning.
 */
public final class CriuInventory {
  /** The magic the file starts with (criu/include/magic.h). */
  public static final int INVENTORY_MAGIC = 0x58313116;
  /** inventory_entry.network_lock_method (field 11); values as CRIU's enum NETWORK_LOCK_METHOD. */
  static final int NETWORK_LOCK_METHOD_FIELD = 11;
  static final int NETWORK_LOCK_SKIP = 2;

  private CriuInventory() {}

  /**
   * Tells CRIU not to lock and unlock the network while it restores the images in
   * {@code imageDir}: for a restore into a namespace whose owner keeps incoming packets out
   * until the tree runs. CRIU's own restore-time lock and unlock run iptables five times
   * (~60 ms of the frozen window here) to do what that lock already does.
   */
  public static void skipNetworkLock(Path imageDir) throws IOException {
    Path file = imageDir.resolve("inventory.img");
    Image img = read(file);
    UnknownFieldSet edited = UnknownFieldSet.newBuilder(img.entry())
        .clearField(NETWORK_LOCK_METHOD_FIELD)
        .addField(NETWORK_LOCK_METHOD_FIELD, UnknownFieldSet.Field.newBuilder().addVarint(NETWORK_LOCK_SKIP).build())
        .build();
    byte[] msg = edited.toByteArray();
    ByteArrayOutputStream out = new ByteArrayOutputStream(8 + msg.length + img.rest().length);
    out.write(le(INVENTORY_MAGIC));
    out.write(le(msg.length));
    out.write(msg);
    out.write(img.rest());
    Path tmp = file.resolveSibling("inventory.img.ferry-tmp");
    Files.write(tmp, out.toByteArray());
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /** The network-lock method recorded in the inventory, -1 if none (CRIU then assumes iptables). */
  public static int networkLockMethod(Path imageDir) throws IOException {
    UnknownFieldSet.Field f = read(imageDir.resolve("inventory.img")).entry().getField(NETWORK_LOCK_METHOD_FIELD);
    return f.getVarintList().isEmpty() ? -1 : f.getVarintList().get(f.getVarintList().size() - 1).intValue();
  }

  /** The inventory's one entry, and whatever follows it in the file (kept as it is). */
  private record Image(UnknownFieldSet entry, byte[] rest) {}

  private static Image read(Path file) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    if (b.remaining() < 8 || b.getInt() != INVENTORY_MAGIC) {
      throw new IOException(file + " is not a CRIU inventory image");
    }
    int len = b.getInt();
    if (len < 0 || len > b.remaining()) {
      throw new IOException(file + ": truncated inventory entry");
    }
    return new Image(UnknownFieldSet.parseFrom(slice(b.array(), b.position(), len)),
        slice(b.array(), b.position() + len, b.remaining() - len));
  }

  private static byte[] slice(byte[] a, int from, int len) {
    byte[] s = new byte[len];
    System.arraycopy(a, from, s, 0, len);
    return s;
  }

  private static byte[] le(int v) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
  }
}
