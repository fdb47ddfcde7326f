package dev.ferry.runtime;

import com.sun.jna.Native;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * Brings one interface of a network namespace up or down with one system call
 * ({@code SIOCSIFFLAGS} on a socket opened in that namespace ahead of time): microseconds,
 * where starting an {@code ip} process in the namespace costs milliseconds. The identity
 * hand-over uses it so that the time between the source going silent for the pod's IP and the
 * target answering for it is as short as the round trip between them.
 */
public final class LinkSwitch implements AutoCloseable {
  private static final int AF_INET = 2;
  private static final int SOCK_DGRAM = 2;
  private static final long SIOCGIFFLAGS = 0x8913;
  private static final long SIOCSIFFLAGS = 0x8914;
  private static final short IFF_UP = 0x1;
  private static final int IFNAMSIZ = 16;
  /** sizeof(struct ifreq) on 64-bit Linux. */
  private static final int IFREQ_SIZE = 40;

  private final String where;
  private final byte[] name;
  private final int fd;

  private LinkSwitch(String where, byte[] name, int fd) {
    this.where = where;
    this.name = name;
    this.fd = fd;
  }

  /** Opens a switch for {@code iface} in {@code netns}; nothing changes until {@link #up} or {@link #down}. */
  public static LinkSwitch open(String netns, String iface) {
    byte[] n = iface.getBytes(StandardCharsets.US_ASCII);
    if (n.length >= IFNAMSIZ) {
      throw new IllegalArgumentException("interface name too long: " + iface);
    }
    try {
      return new LinkSwitch(iface + " in " + netns, n, NetnsSocket.open(netns, AF_INET, SOCK_DGRAM, 0));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Opens a switch for {@code iface} in the caller's own network namespace (e.g. a pod veth's host end). */
  public static LinkSwitch openHere(String iface) {
    byte[] n = iface.getBytes(StandardCharsets.US_ASCII);
    if (n.length >= IFNAMSIZ) {
      throw new IllegalArgumentException("interface name too long: " + iface);
    }
    int fd = LibC.INSTANCE.socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
      throw new UncheckedIOException(new IOException("cannot open a socket: errno " + Native.getLastError()));
    }
    return new LinkSwitch(iface, n, fd);
  }

  /**
   * Loads the native calls and runs them once on the loopback of the caller's namespace (read
   * only): the first use otherwise costs ~50-100 ms, inside a migration's frozen window.
   */
  public static void warmUp() {
    int fd = LibC.INSTANCE.socket(AF_INET, SOCK_DGRAM, 0);
    if (fd >= 0) {
      try {
        new LinkSwitch("lo", "lo".getBytes(StandardCharsets.US_ASCII), fd).isUp();
      } finally {
        LibC.INSTANCE.close(fd);
      }
    }
  }

  /** Brings the interface up. */
  public void up() {
    set(true);
  }

  /** Takes the interface down: it answers for none of its addresses any more. */
  public void down() {
    set(false);
  }

  /** Whether the interface is up (administratively). */
  public boolean isUp() {
    return (flags() & IFF_UP) != 0;
  }

  private synchronized void set(boolean up) {
    byte[] req = readFlags();
    short flags = flagsOf(req);
    short wanted = (short) (up ? flags | IFF_UP : flags & ~IFF_UP);
    if (wanted == flags) {
      return;
    }
    req[IFNAMSIZ] = (byte) wanted; // little-endian short at offset 16
    req[IFNAMSIZ + 1] = (byte) (wanted >> 8);
    if (LibC.INSTANCE.ioctl(fd, SIOCSIFFLAGS, req) != 0) {
      throw failure(up ? "bringing up" : "taking down");
    }
  }

  private synchronized short flags() {
    return flagsOf(readFlags());
  }

  /** A struct ifreq for the interface, its flags filled in by the kernel. */
  private byte[] readFlags() {
    byte[] req = new byte[IFREQ_SIZE];
    System.arraycopy(name, 0, req, 0, name.length);
    if (LibC.INSTANCE.ioctl(fd, SIOCGIFFLAGS, req) != 0) {
      throw failure("reading the flags of");
    }
    return req;
  }

  private static short flagsOf(byte[] req) {
    return (short) ((req[IFNAMSIZ] & 0xff) | (req[IFNAMSIZ + 1] << 8));
  }

  private IllegalStateException failure(String what) {
    return new IllegalStateException(what + " " + where + " failed: errno " + Native.getLastError());
  }

  @Override
  public synchronized void close() {
    LibC.INSTANCE.close(fd);
  }
}
