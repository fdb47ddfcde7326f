package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.UnknownFieldSet;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CriuInventoryTest {
  @TempDir Path dir;

  /** An inventory CRIU 4.2 wrote for a dump with its default (iptables) network lock. */
  private Path realInventory() throws IOException {
    try (InputStream in = getClass().getResourceAsStream("/criu/inventory.img")) {
      Files.write(dir.resolve("inventory.img"), in.readAllBytes());
    }
    return dir;
  }

  @Test
  void switchesTheRestoreToNoNetworkLockAndKeepsEveryOtherField() throws IOException {
    Path images = realInventory();
    byte[] before = Files.readAllBytes(images.resolve("inventory.img"));
    assertThat(CriuInventory.networkLockMethod(images)).isEqualTo(0); // iptables

    CriuInventory.skipNetworkLock(images);

    assertThat(CriuInventory.networkLockMethod(images)).isEqualTo(CriuInventory.NETWORK_LOCK_SKIP);
    UnknownFieldSet was = entry(before);
    UnknownFieldSet now = entry(Files.readAllBytes(images.resolve("inventory.img")));
    assertThat(now.asMap().keySet()).isEqualTo(was.asMap().keySet());
    was.asMap().forEach((field, value) -> {
      if (field != CriuInventory.NETWORK_LOCK_METHOD_FIELD) {
        assertThat(now.getField(field)).as("field %d", field).isEqualTo(value);
      }
    });
    assertThat(Arrays.copyOf(Files.readAllBytes(images.resolve("inventory.img")), 4)).isEqualTo(Arrays.copyOf(before, 4));
  }

  @Test
  void isIdempotent() throws IOException {
    Path images = realInventory();
    CriuInventory.skipNetworkLock(images);
    byte[] once = Files.readAllBytes(images.resolve("inventory.img"));
    CriuInventory.skipNetworkLock(images);
    assertThat(Files.readAllBytes(images.resolve("inventory.img"))).isEqualTo(once);
  }

  @Test
  void refusesAFileThatIsNoInventory() throws IOException {
    Files.write(dir.resolve("inventory.img"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
    assertThatThrownBy(() -> CriuInventory.skipNetworkLock(dir)).hasMessageContaining("not a CRIU inventory image");
  }

  private static UnknownFieldSet entry(byte[] file) throws IOException {
    int len = java.nio.ByteBuffer.wrap(file, 4, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt();
    return UnknownFieldSet.parseFrom(Arrays.copyOfRange(file, 8, 8 + len));
  }
}
