package dev.ferry.runtime;

import com.sun.jna.Native;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Acts on the sockets another process holds, through {@code pidfd_getfd(2)}: Ferry's own copy of
 * a descriptor shares the socket, so an option set on it applies to the holder's.
 *
 * <ul>
 *   <li>{@link #releaseRepair}: CRIU puts the sockets of a dumped tree into repair mode; when a
 *       lazy dump fails after the dump itself succeeded (Ferry cancels it to roll back), CRIU 4.2
 *       thaws the tree but skips its network unlock ({@code cr_dump_finish}: the unlock only runs
 *       before the lazy-pages phase), so the sockets stay in repair mode and the client's
 *       connection is dead although the app runs. Ferry sets {@code TCP_REPAIR} off itself, while
 *       the tree is still frozen: once thawed, the app may see the broken socket and close it
 *       within milliseconds (Redis does).
 *   <li>{@link #resetOnClose}: CRIU's lazy dump takes a page client that closes its connection
 *       in order (a FIN: {@code recv} returns 0) for "every page fetched", ends the dump and
 *       kills the source's tree. A page client killed to roll back must end with a reset, which
 *       makes the dump fail and hand the tree back instead.
 * </ul>
 */
public final class ForeignSockets {
  private static final Logger LOG = LoggerFactory.getLogger(ForeignSockets.class);
  private static final int SYS_PIDFD_OPEN = 434; // same number on x86_64 and arm64
  private static final int SYS_PIDFD_GETFD = 438;
  private static final int IPPROTO_TCP = 6;
  private static final int TCP_REPAIR = 19;
  private static final int SOL_SOCKET = 1;
  private static final int SO_LINGER = 13;

  /** An option set on one socket; false when the kernel refuses it there. */
  @FunctionalInterface
  private interface SocketAction {
    boolean apply(int fd);
  }

  private ForeignSockets() {}

  /**
   * Turns repair mode off on every TCP socket process {@code pid} holds (harmless on sockets
   * not in repair mode; the kernel refuses it on other sockets and listening ones).
   *
   * @return sockets handled
   */
  public static int releaseRepair(long pid) throws IOException {
    return forEachSocket(pid, fd -> LibC.INSTANCE.setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, new int[] {0}, 4) == 0);
  }

  /**
   * Makes every socket process {@code pid} holds end with a reset instead of a FIN when it is
   * closed ({@code SO_LINGER} on, 0 s), e.g. by killing the process.
   *
   * @return sockets handled
   */
  public static int resetOnClose(long pid) throws IOException {
    return forEachSocket(pid, fd -> LibC.INSTANCE.setsockopt(fd, SOL_SOCKET, SO_LINGER, new int[] {1, 0}, 8) == 0);
  }

  private static int forEachSocket(long pid, SocketAction action) throws IOException {
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
          continue; // every socket is tried: the kernel refuses what does not apply
        }
        int local = LibC.INSTANCE.syscall(SYS_PIDFD_GETFD, pidfd, Integer.parseInt(fd.getFileName().toString()), 0);
        if (local < 0) {
          LOG.warn("pidfd_getfd of fd {} of pid {} failed: errno {}", fd.getFileName(), pid, Native.getLastError());
          continue;
        }
        try {
          if (action.apply(local)) {
            done++;
          } else {
            LOG.debug("option refused on fd {} of pid {}: errno {}", fd.getFileName(), pid, Native.getLastError());
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
