package dev.ferry.runtime;

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
  private static final int MSG_DONTWAIT = 0x40;
  private static final short POLLIN = 0x1;
  /** Offsets in the request frame: the target hardware and protocol addresses. */
  private static final int TARGET_MAC = 32;
  private static final int TARGET_IP = 38;

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
    return NetnsSocket.inNamespace(netns, () -> openHere(netns, iface, senderIp, targetIp));
  }

  /** Runs on a thread inside the namespace: reads the interface, opens the socket. */
  private static ArpProbe openHere(String netns, String iface, String senderIp, String targetIp) throws IOException {
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
    send(0);
  }

  /**
   * Sends one request; a re-ask ({@code reask} > 0) carries its count in the request's target
   * hardware address, which requests leave unused, so that a capture tells it from a new question.
   */
  public void send(int reask) throws IOException {
    frame[TARGET_MAC + 5] = (byte) Math.min(reask, 255);
    if (LibC.INSTANCE.sendto(fd, frame, frame.length, 0, address, address.length) < 0) {
      throw new IOException("sending an ARP request failed: errno " + Native.getLastError());
    }
  }

  /**
   * Waits up to {@code timeoutMs} for an ARP reply about the asked IP (from anybody); replies
   * already waiting count. Returns whether one came.
   */
  public boolean awaitReply(int timeoutMs) {
    long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
    byte[] pollfd = new byte[8];
    ByteBuffer.wrap(pollfd).order(ByteOrder.nativeOrder()).putInt(fd).putShort(POLLIN);
    byte[] buf = new byte[128];
    while (true) {
      int n;
      while ((n = LibC.INSTANCE.recv(fd, buf, buf.length, MSG_DONTWAIT)) > 0) {
        if (isReplyAbout(buf, n)) {
          return true;
        }
      }
      long leftNs = deadline - System.nanoTime();
      if (leftNs <= 0) {
        return false;
      }
      LibC.INSTANCE.poll(pollfd, 1, (int) Math.max(1, leftNs / 1_000_000L)); // data, or the time is up
    }
  }

  /** Discards frames received so far (replies to earlier questions). */
  public void drain() {
    byte[] buf = new byte[128];
    while (LibC.INSTANCE.recv(fd, buf, buf.length, MSG_DONTWAIT) > 0) {
      // nothing to keep
    }
  }

  /** An ARP reply (operation 2) whose sender protocol address is the asked IP. */
  private boolean isReplyAbout(byte[] b, int n) {
    if (n < 42 || b[12] != 0x08 || b[13] != 0x06 || b[20] != 0 || b[21] != 2) {
      return false;
    }
    for (int i = 0; i < 4; i++) {
      if (b[28 + i] != frame[TARGET_IP + i]) {
        return false;
      }
    }
    return true;
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
