package dev.ferry.runtime;

import com.sun.jna.Library;
import com.sun.jna.Native;

/**
 * The C library calls Ferry makes in-process (through JNA) where starting {@code ip}, {@code
 * mount} or {@code mknod} would cost milliseconds: sockets in other network namespaces, link
 * flags, ARP probes, sockets of other processes, and the tmpfs mounts of {@link PodTmpfs}.
 * Each returns -1 on failure, with the reason in {@link Native#getLastError()}.
 */
interface LibC extends Library {
  LibC INSTANCE = Native.load("c", LibC.class);

  int socket(int domain, int type, int protocol);

  int sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrLen);

  int ioctl(int fd, long request, byte[] arg);

  int recv(int fd, byte[] buf, long len, int flags);

  int poll(byte[] fds, long nfds, int timeout);

  int setns(int fd, int nstype);

  int open(String path, int flags);

  int close(int fd);

  int syscall(int number, Object... args);

  int setsockopt(int fd, int level, int name, int[] value, int len);

  int mount(String source, String target, String fsType, long flags, String data);

  int umount2(String target, int flags);

  int mknod(String path, int mode, long dev);

  int chmod(String path, int mode);

  int lchown(String path, int uid, int gid);
}
