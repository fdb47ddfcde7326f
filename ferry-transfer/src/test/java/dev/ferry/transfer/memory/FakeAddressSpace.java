package dev.ferry.transfer.memory;

import java.util.Random;
import java.util.TreeMap;

/** A process's memory for tests: page address to contents, random and reproducible. */
final class FakeAddressSpace {
  static final int PAGE = 4096;
  /** Page address to contents, in address order. */
  final TreeMap<Long, byte[]> pages = new TreeMap<>();
  private final Random rnd;

  FakeAddressSpace(long seed) {
    this.rnd = new Random(seed);
  }

  /** Maps {@code count} pages of random contents from {@code from}. */
  void fill(long from, int count) {
    for (int i = 0; i < count; i++) {
      byte[] p = new byte[PAGE];
      rnd.nextBytes(p);
      pages.put(from + (long) i * PAGE, p);
    }
  }

  /** Changes one byte of the page at {@code addr}. */
  void dirty(long addr) {
    pages.get(addr)[rnd.nextInt(PAGE)] ^= 1;
  }

  byte[] page(long addr) {
    return pages.get(addr);
  }

  /** Reads it as the page pump reads a frozen process. */
  PagePump.Memory reader() {
    return (pid, vaddr, buf) -> {
      for (long a = vaddr; buf.hasRemaining(); a += PAGE) {
        byte[] p = pages.get(a);
        if (p == null) {
          return false;
        }
        buf.put(p);
      }
      return true;
    };
  }
}
