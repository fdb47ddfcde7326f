package dev.ferry.runtime;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The command line of a JVM that Ferry starts from another: a host's agent, its page daemon,
 * the demo's load client, a migration run by the fault matrix. They all run this JVM's
 * {@code java} on this JVM's class path, with the same flags:
 *
 * <ul>
 *   <li>the serial collector (small heaps, and no collector threads competing for two CPUs);
 *   <li>on x86-64, the C1 compiler only. A fresh agent's first migration runs the frozen
 *       window's code for the first time, and C2 compiled it right then: sampled per thread
 *       (schedstat) in a fresh lab's demo at 1 GiB on 2 CPUs, the agents' and page daemon's
 *       compiler threads took ~240 ms of CPU inside a frozen window of ~550 ms, and the
 *       restored pod's page faults waited for the CPUs. With C1 only that fell to ~60 ms; the
 *       demo's frozen window went from 527-596 ms to 419-499 ms, its client gap from 511-881 ms
 *       to 389-551 ms (5 and 3 runs), and warm migrations took as long as before. What is hot
 *       in them runs native code either way: TLS in BoringSSL, xxHash and LZ4 through JNI,
 *       CRC32C as an intrinsic. Elsewhere Ferry ships no BoringSSL build, TLS falls back to
 *       Java's own, whose AES-GCM C1 code runs ~20x slower: the full JIT stays;
 *   <li>{@code java.io.tmpdir} in a directory the caller removes with what the JVM worked on
 *       (lz4-java unpacks its native library there, and a killed JVM never deletes it);
 *   <li>last, whatever {@code FERRY_JVM_OPTS} holds (split on spaces), e.g.
 *       {@code -XX:TieredStopAtLevel=4} for the full JIT: a later flag wins.
 * </ul>
 */
public final class JavaCommand {
  /** Environment variable with extra JVM options for every JVM Ferry starts. */
  public static final String EXTRA_OPTIONS = "FERRY_JVM_OPTS";

  private JavaCommand() {}

  /**
   * {@code java [flags] -cp CLASSPATH mainClass args...}.
   *
   * @param heap maximum heap ({@code -Xmx}), e.g. "512m"; null for the JVM's default
   * @param tmpDir the JVM's temporary directory
   */
  public static List<String> of(String heap, Path tmpDir, String mainClass, List<String> args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    if (heap != null) {
      cmd.add("-Xmx" + heap);
    }
    cmd.add("-XX:+UseSerialGC");
    if (nativeHotPaths()) {
      cmd.add("-XX:TieredStopAtLevel=1");
    }
    cmd.add("-Djava.io.tmpdir=" + tmpDir);
    String extra = System.getenv(EXTRA_OPTIONS);
    if (extra != null && !extra.isBlank()) {
      cmd.addAll(Arrays.asList(extra.strip().split("\\s+")));
    }
    cmd.add("-cp");
    cmd.add(classPath());
    cmd.add(mainClass);
    cmd.addAll(args);
    return cmd;
  }

  /** This JVM's class path, or the one its launcher named for the JVMs it starts. */
  static String classPath() {
    return System.getProperty("ferry.launch.classpath", System.getProperty("java.class.path"));
  }

  /** Whether the platform is one whose hot paths Ferry runs in native code (see the class comment). */
  static boolean nativeHotPaths() {
    String arch = System.getProperty("os.arch", "");
    return arch.equals("amd64") || arch.equals("x86_64");
  }
}
