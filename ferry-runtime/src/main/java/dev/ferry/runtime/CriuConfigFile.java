package dev.ferry.runtime;

import com.sun.jna.Native;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The CRIU configuration file a container's {@code org.criu.config} annotation names ({@link
 * MaskedMounts#ANNOTATION}), which runc hands to CRIU and CRIU reads when it takes its request.
 *
 * <p>It is always written whole and renamed into place: CRIU never reads half of it, and a FIFO
 * left there by a {@link Gate} (an agent that died with a restore pending) is replaced, not
 * opened, which would wait for a reader for ever.
 */
final class CriuConfigFile {
  private static final int S_IFIFO = 0010000;

  private CriuConfigFile() {}

  static void write(Path file, String content) throws IOException {
    Path next = file.resolveSibling(file.getFileName() + ".next");
    Files.deleteIfExists(next);
    Files.writeString(next, content);
    Files.move(next, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * Makes {@code file} a gate for a CRIU started ahead ({@link PendingRestore}): a FIFO held open
   * here for writing, so that CRIU opens it at once and then waits in its read until {@link
   * Gate#open} hands it {@code content}. CRIU does nothing with the images or the container before
   * it has read its configuration.
   */
  static Gate gate(Path file, String content) throws IOException {
    Files.deleteIfExists(file);
    if (LibC.INSTANCE.mknod(file.toString(), S_IFIFO | 0600, 0) != 0) {
      throw new IOException("cannot make the FIFO " + file + ": errno " + Native.getLastError());
    }
    try {
      // read-write: opening a FIFO so does not wait for a reader, and CRIU's open then finds a writer
      return new Gate(file, content, new RandomAccessFile(file.toFile(), "rw"));
    } catch (IOException e) {
      write(file, content);
      throw e;
    }
  }

  /** See {@link #gate}. */
  static final class Gate {
    private final Path file;
    private final String content;
    private final RandomAccessFile fifo;
    private boolean done;

    private Gate(Path file, String content, RandomAccessFile fifo) {
      this.file = file;
      this.content = content;
      this.fifo = fifo;
    }

    /**
     * Hands CRIU its configuration, and leaves a regular file with it in the FIFO's place (for
     * the container's next dump, and for a CRIU that had not opened the FIFO yet: the FIFO's
     * contents are dropped once nobody holds it open). Idempotent.
     */
    synchronized void open() throws IOException {
      if (done) {
        return;
      }
      done = true;
      try {
        fifo.write(content.getBytes(StandardCharsets.UTF_8)); // a few hundred bytes: the pipe takes them whole
      } finally {
        try {
          write(file, content);
        } finally {
          fifo.close(); // the CRIU reading the FIFO reads to its end
        }
      }
    }

    /**
     * For a restore abandoned (its CRIU killed first): a regular file goes back in the FIFO's
     * place, and a CRIU still reading the FIFO would read an empty configuration, without which
     * the images' external mounts have no binding and the restore fails. Idempotent.
     */
    synchronized void shut() {
      if (done) {
        return;
      }
      done = true;
      try {
        write(file, content);
      } catch (IOException e) {
        // the next dump writes the file again (by a rename too)
      }
      try {
        fifo.close();
      } catch (IOException e) {
        // nothing was written to it
      }
    }
  }
}
