package dev.ferry.migration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CapacityTest {
  @TempDir Path dir;

  @Test
  void slotsAndMemoryAreReservedAndRefusalsSayWhy() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Capacity c = new Capacity(s);
      c.defineHost("host-b", 1000, 2);
      c.reserve("host-b", "pod:a", "pod", 600);
      assertThatThrownBy(() -> c.reserve("host-b", "migration:m1", "placeholder", 500))
          .isInstanceOf(Capacity.CapacityException.class)
          .hasMessageContaining("host-b has 400 MiB free of 1000 MiB").hasMessageContaining("pod:a 600 MiB");
      c.reserve("host-b", "migration:m1", "placeholder", 400);
      c.reserve("host-b", "migration:m1", "placeholder", 400); // idempotent
      assertThatThrownBy(() -> c.reserve("host-b", "migration:m2", "placeholder", 1))
          .hasMessageContaining("host-b is full: all 2 pod slots are reserved");
      c.release("migration:m1");
      c.reserve("host-b", "migration:m2", "placeholder", 1);
      assertThatThrownBy(() -> c.reserve("host-x", "pod:z", "pod", 1)).hasMessageContaining("no recorded capacity");
    }
  }

  @Test
  void theFirstDefinitionOfAHostStays() {
    try (MigrationStore s = new MigrationStore(dir)) {
      Capacity c = new Capacity(s);
      c.defineHost("host-a", 1000, 2);
      c.defineHost("host-a", 5000, 9);
      assertThat(c.usage()).singleElement().satisfies(h -> {
        assertThat(h.memoryMiB()).isEqualTo(1000);
        assertThat(h.podSlots()).isEqualTo(2);
      });
    }
  }

  @Test
  void concurrentReservationsNeverOverbook() throws Exception {
    try (MigrationStore s = new MigrationStore(dir)) {
      Capacity c = new Capacity(s);
      c.defineHost("host-b", 100_000, 5);
      CountDownLatch go = new CountDownLatch(1);
      List<CompletableFuture<Boolean>> all = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        String owner = "migration:m" + i;
        all.add(CompletableFuture.supplyAsync(() -> {
          try {
            go.await();
            c.reserve("host-b", owner, "placeholder", 10);
            return true;
          } catch (Capacity.CapacityException e) {
            return false;
          } catch (InterruptedException e) {
            throw new IllegalStateException(e);
          }
        }));
      }
      go.countDown();
      long granted = all.stream().map(CompletableFuture::join).filter(b -> b).count();
      assertThat(granted).isEqualTo(5);
      assertThat(c.usage().get(0).slotsReserved()).isEqualTo(5);
    }
  }

  @Test
  void aSecondStoreOnTheSameFilesSeesTheReservations() {
    try (MigrationStore s = new MigrationStore(dir); MigrationStore t = new MigrationStore(dir)) {
      new Capacity(s).defineHost("host-b", 1000, 1);
      new Capacity(s).reserve("host-b", "pod:a", "pod", 10);
      assertThatThrownBy(() -> new Capacity(t).reserve("host-b", "pod:b", "pod", 10)).hasMessageContaining("full");
    }
  }
}
