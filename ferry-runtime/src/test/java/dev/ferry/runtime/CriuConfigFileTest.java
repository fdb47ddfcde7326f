package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The gate a restore started ahead waits at: CRIU's configuration file as a FIFO (real ones). */
class CriuConfigFileTest {
  @TempDir Path dir;

  /** What CRIU does with the file: opens it, reads it to its end. */
  private static CompletableFuture<String> readLikeCriu(Path file) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
  }

  @Test
  void aReaderWaitsAtTheGateUntilItOpensThenReadsTheWholeConfiguration() throws Exception {
    Path file = dir.resolve("criu.conf");
    CriuConfigFile.Gate gate = CriuConfigFile.gate(file, "external mnt[/proc/acpi]:m1\n");
    CompletableFuture<String> criu = readLikeCriu(file);
    Thread.sleep(300);
    assertThat(criu).as("held at the gate").isNotDone();
    gate.open();
    assertThat(criu.get(5, TimeUnit.SECONDS)).isEqualTo("external mnt[/proc/acpi]:m1\n");
    assertThat(file).isRegularFile().hasContent("external mnt[/proc/acpi]:m1");
    gate.open(); // idempotent
  }

  @Test
  void aReaderArrivingAfterTheGateOpenedReadsTheFileLeftInItsPlace() throws Exception {
    Path file = dir.resolve("criu.conf");
    CriuConfigFile.Gate gate = CriuConfigFile.gate(file, "a\nb\n");
    gate.open();
    assertThat(readLikeCriu(file).get(5, TimeUnit.SECONDS)).isEqualTo("a\nb\n");
  }

  @Test
  void aShutGateGivesAWaitingReaderNothingAndLeavesTheFileForTheNextDump() throws Exception {
    Path file = dir.resolve("criu.conf");
    CriuConfigFile.Gate gate = CriuConfigFile.gate(file, "external mnt[/sys/firmware]:m2\n");
    CompletableFuture<String> criu = readLikeCriu(file);
    Thread.sleep(200);
    gate.shut();
    assertThat(criu.get(5, TimeUnit.SECONDS)).as("no binding for the images' external mounts").isEmpty();
    assertThat(file).isRegularFile().hasContent("external mnt[/sys/firmware]:m2");
    gate.open(); // nothing after a shut
    assertThat(file).hasContent("external mnt[/sys/firmware]:m2");
  }

  @Test
  void writingReplacesAFifoLeftByADeadAgentWithoutWaitingForAReader() throws Exception {
    Path file = dir.resolve("criu.conf");
    CriuConfigFile.gate(file, "never handed over\n"); // its holder gone: nobody will ever read or write it
    CompletableFuture<Void> write = CompletableFuture.runAsync(() -> {
      try {
        CriuConfigFile.write(file, "fresh\n");
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    write.get(5, TimeUnit.SECONDS);
    assertThat(file).isRegularFile().hasContent("fresh");
    assertThat(dir.resolve("criu.conf.next")).doesNotExist();
  }
}
