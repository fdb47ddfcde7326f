package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Scanning a live process's private memory, as a pre-copy round does. */
class ProcessMemoryTest {
  /**
   * A pod's short-lived processes exit while a round scans them: a process that exits between
   * reading its mappings and reading their page table is gone, not an error (its pagemap reads
   * empty then; a round once failed there with an IndexOutOfBoundsException).
   */
  @Test
  void aProcessThatExitsMidScanEndsItsScanQuietly() throws Exception {
    Process p = new ProcessBuilder("sleep", "60").start();
    try {
      long[] calls = {0};
      long visited = ProcessMemory.scan(p.pid(), (vaddr, data, count) -> {
        if (calls[0]++ == 0) {
          p.destroyForcibly();
          try {
            p.waitFor(10, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        }
      });
      assertThat(calls[0]).as("the scan reached the process's memory before it exited").isPositive();
      assertThat(visited).isPositive();
      assertThat(p.isAlive()).isFalse();
    } finally {
      p.destroyForcibly();
    }
  }

  @Test
  void scansEveryPresentPrivatePageOfALiveProcess() throws Exception {
    Process p = new ProcessBuilder("sleep", "60").start();
    try {
      long[] pages = {0};
      long visited = ProcessMemory.scan(p.pid(), (vaddr, data, count) -> {
        assertThat(data.remaining()).isEqualTo(count * 4096);
        pages[0] += count;
      });
      assertThat(visited).isPositive().isEqualTo(pages[0]);
    } finally {
      p.destroyForcibly();
    }
  }
}
