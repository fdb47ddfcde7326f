package dev.ferry.transfer.memory;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PagePathWarmupTest {
  @TempDir Path tmp;

  @Test
  void aWarmUpPassCompletesQuicklyAndLeavesOnlyItsOwnFiles() throws Exception {
    CompletableFuture<Void> pass = CompletableFuture.runAsync(() -> {
      try {
        PagePathWarmup.exercise(tmp, 300);
      } catch (Exception e) {
        throw new RuntimeException(e);
      }
    });
    pass.get(30, TimeUnit.SECONDS); // an agent runs this at start: it must end, and not throw
    try (var files = Files.walk(tmp)) {
      assertThat(files.filter(Files::isRegularFile).map(p -> tmp.relativize(p).toString()))
          .allMatch(p -> p.startsWith("mem/") || p.startsWith("arrived"));
    }
  }
}
