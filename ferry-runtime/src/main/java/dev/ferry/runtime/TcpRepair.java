package dev.ferry.runtime;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.ptr.IntByReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes a thawed process's TCP sockets out of repair mode. CRIU puts the sockets of a dumped
 * tree into repair mode; when a lazy dump fails after the dump itself succeeded (Ferry cancels
 * it to roll back), CRIU 4.2 thaws the tree but skips its network unlock
 * ({@code cr_dump_finish}: the unlock only runs before the lazy-pages phase), so the sockets
 * stay in repair mode and the client's connection is dead although the app runs. Ferry takes
 * each socket's descriptor with {@code pidfd_getfd(2)} and sets {@code TCP_REPAIR} off itself,
 * while the tree is still frozen: once thawed, the app may see the broken socket and close it
 * within milliseconds (Redis does).
 */
public final class TcpRepair {
  private static final Logger LOG = LoggerFactory.getLogger(TcpRepair.class);
  private static final int SYS_PIDFD_OPEN = 434; // same number on x86_64 and arm64
  private static final int SYS_PIDFD_GETFD = 438;
  private static final int IPPROTO_TCP = 6;
  private static final int TCP_REPAIR = 19;

  private interface LibC extends Library {
    LibC INSTANCE = Native.load("c", LibC.class);

    int syscall(int number, Object... args);

    int setsockopt(int fd, int level, int name, IntByReference value, int len);

    int close(int fd);
  }

  private TcpRepair() {}

  /**
   * Turns repair mode off on every TCP socket process {@code pid} holds (harmless on sockets
   * not in repair mode; the kernel refuses it on other sockets and listening ones).
   *
   * @return sockets handled
   */
  public static int release(long pid) throws IOException {
    int pidfd = LibC.INSTANCE.syscall(SYS_PIDFD_OPEN, (int) pid, 0);
    if (pidfd < 0) {
      throw new IOException("pidfd_open(" + pid + ") failed: errno " + Native.getLastError());
    }
    int done = 0;
    try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
      for (Path fd : (Iterable<Path>) fds::iterator) {
        String link;
        try {
          link = Files.readSymbolicLink(fd).toString();
        } catch (IOException e) {
          continue; // closed meanwhile
        }
        if (!link.startsWith("socket:[")) {
          continue; // every socket is tried: the kernel refuses non-TCP and listening ones
        }
        int local = LibC.INSTANCE.syscall(SYS_PIDFD_GETFD, pidfd, Integer.parseInt(fd.getFileName().toString()), 0);
        if (local < 0) {
          LOG.warn("pidfd_getfd of fd {} of pid {} failed: errno {}", fd.getFileName(), pid, Native.getLastError());
          continue;
        }
        try {
          if (LibC.INSTANCE.setsockopt(local, IPPROTO_TCP, TCP_REPAIR, new IntByReference(0), 4) == 0) {
            done++;
          } else {
            LOG.debug("TCP_REPAIR off on fd {} of pid {}: errno {}", fd.getFileName(), pid, Native.getLastError());
          }
        } finally {
          LibC.INSTANCE.close(local);
        }
      }
    } finally {
      LibC.INSTANCE.close(pidfd);
    }
    return done;
  }
}
