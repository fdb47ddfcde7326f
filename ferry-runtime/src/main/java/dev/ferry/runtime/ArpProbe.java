package dev.ferry.runtime;

import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;

/**
 * Sends ARP requests ("who has IP?") out of one interface of a network namespace, from a
 * packet socket opened inside that namespace by a thread of its own ({@code setns(2)} affects
 * only the calling thread). Used to ask, many times a second, who answers for a pod's IP.
 */
public final class ArpProbe implements AutoCloseable {
  private static final int AF_PACKET = 17;
  private static final int SOCK_RAW = 3;
  private static final int ETH_P_ARP = 0x0806;
  private static final int CLONE_NEWNET = 0x40000000;

  private interface LibC extends Library {
    LibC INSTANCE = Native.load("c", LibC.class);

    int socket(int domain, int type, int protocol);

    int sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrLen);

    int setns(int fd, int nstype);

    int open(String path, int flags);

    int close(int fd);
  }

  private final int fd;
  private final byte[] frame;
  private final byte[] address;

  private ArpProbe(int fd, byte[] frame, byte[] address) {
    this.fd = fd;
    this.frame = frame;
    this.address = address;
  }

  /**
   * Opens a probe on {@code iface} of network namespace {@code netns} asking for {@code targetIp}
   * on behalf of {@code senderIp} (an address the interface holds, so that answers come back to it).
   */
  public static ArpProbe open(String netns, String iface, String senderIp, String targetIp) throws IOException {
    Object[] result = new Object[1];
    Thread t = new Thread(() -> {
      try {
        result[0] = openHere(netns, iface, senderIp, targetIp);
      } catch (IOException | RuntimeException e) {
        result[0] = e;
      }
    }, "ferry-arp-probe-open");
    t.start();
    try {
      t.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    }
    if (result[0] instanceof IOException e) {
      throw e;
    }
    if (result[0] instanceof RuntimeException e) {
      throw e;
    }
    return (ArpProbe) result[0];
  }

  /** Runs on a throw-away thread: enters the namespace, reads the interface, opens the socket. */
  private static ArpProbe openHere(String netns, String iface, String senderIp, String targetIp) throws IOException {
    int nsfd = LibC.INSTANCE.open(Netns.path(netns).toString(), 0);
    if (nsfd < 0) {
      throw new IOException("cannot open network namespace " + netns + ": errno " + Native.getLastError());
    }
    try {
      if (LibC.INSTANCE.setns(nsfd, CLONE_NEWNET) != 0) {
        throw new IOException("setns to " + netns + " failed: errno " + Native.getLastError());
      }
    } finally {
      LibC.INSTANCE.close(nsfd);
    }
    // /sys shows the namespace of whoever mounted it, not this thread's: ask ip instead
    String link = Exec.checked(Netns.in(netns, "ip", "-o", "link", "show", "dev", iface)).stdout();
    int ifindex = Integer.parseInt(link.substring(0, link.indexOf(':')).strip());
    String mac = link.replaceAll("(?s).*link/ether ([0-9a-f:]{17}).*", "$1");
    int fd = LibC.INSTANCE.socket(AF_PACKET, SOCK_RAW, Short.toUnsignedInt(Short.reverseBytes((short) ETH_P_ARP)));
    if (fd < 0) {
      throw new IOException("cannot open a packet socket in " + netns + ": errno " + Native.getLastError());
    }
    byte[] src = HexFormat.ofDelimiter(":").parseHex(mac);
    return new ArpProbe(fd, request(src, ip(senderIp), ip(targetIp)), sockaddr(ifindex));
  }

  /** Sends one request. */
  public void send() throws IOException {
    if (LibC.INSTANCE.sendto(fd, frame, frame.length, 0, address, address.length) < 0) {
      throw new IOException("sending an ARP request failed: errno " + Native.getLastError());
    }
  }

  @Override
  public void close() {
    LibC.INSTANCE.close(fd);
  }

  /** An Ethernet broadcast frame carrying an ARP request (RFC 826). */
  static byte[] request(byte[] srcMac, byte[] senderIp, byte[] targetIp) {
    ByteBuffer b = ByteBuffer.allocate(60).order(ByteOrder.BIG_ENDIAN); // padded to Ethernet's minimum
    b.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(srcMac).putShort((short) ETH_P_ARP);
    b.putShort((short) 1).putShort((short) 0x0800).put((byte) 6).put((byte) 4).putShort((short) 1);
    b.put(srcMac).put(senderIp).put(new byte[6]).put(targetIp);
    return b.array();
  }

  /** struct sockaddr_ll for sending on {@code ifindex} to the broadcast address. */
  private static byte[] sockaddr(int ifindex) {
    ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.nativeOrder());
    b.putShort((short) AF_PACKET);
    b.order(ByteOrder.BIG_ENDIAN).putShort((short) ETH_P_ARP);
    b.order(ByteOrder.nativeOrder()).putInt(ifindex);
    b.putShort((short) 1).put((byte) 0).put((byte) 6).put(new byte[] {-1, -1, -1, -1, -1, -1, 0, 0});
    return b.array();
  }

  private static byte[] ip(String ip) {
    String[] p = ip.split("\\.");
    if (p.length != 4) {
      throw new IllegalArgumentException("not an IPv4 address: " + ip);
    }
    byte[] out = new byte[4];
    for (int i = 0; i < 4; i++) {
      out[i] = (byte) Integer.parseInt(p[i]);
    }
    return out;
  }

}
