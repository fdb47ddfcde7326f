package dev.ferry.runtime;

import com.sun.jna.Native;
import java.io.IOException;

/**
 * Opens sockets that belong to a named network namespace without moving the JVM into it: a
 * short-lived thread enters the namespace ({@code setns(2)} affects only the calling thread),
 * opens the socket and leaves. A socket stays bound to the namespace it was created in, so any
 * thread may use it afterwards (Java's own sockets too, when made by {@link #inNamespace}'s work).
 */
public final class NetnsSocket {
  private static final int CLONE_NEWNET = 0x40000000;

  /** Work to do inside the namespace; may throw. */
  public interface InNamespace<T> {
    T run() throws IOException;
  }

  private NetnsSocket() {}

  /** A socket of {@code domain}, {@code type} and {@code protocol} inside network namespace {@code netns}. */
  static int open(String netns, int domain, int type, int protocol) throws IOException {
    return inNamespace(netns, () -> {
      int fd = LibC.INSTANCE.socket(domain, type, protocol);
      if (fd < 0) {
        throw new IOException("cannot open a socket in network namespace " + netns + ": errno " + Native.getLastError());
      }
      return fd;
    });
  }

  /** Runs {@code work} on a throw-away thread that has entered network namespace {@code netns}. */
  public static <T> T inNamespace(String netns, InNamespace<T> work) throws IOException {
    Object[] result = new Object[1];
    Thread t = new Thread(() -> {
      try {
        enter(netns);
        result[0] = work.run();
      } catch (IOException | RuntimeException e) {
        result[0] = e;
      }
    }, "ferry-netns-" + netns);
    t.start();
    try {
      t.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while opening a socket in " + netns);
    }
    if (result[0] instanceof IOException e) {
      throw e;
    }
    if (result[0] instanceof RuntimeException e) {
      throw e;
    }
    @SuppressWarnings("unchecked")
    T value = (T) result[0];
    return value;
  }

  private static void enter(String netns) throws IOException {
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
  }
}
