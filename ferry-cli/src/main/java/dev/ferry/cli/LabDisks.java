package dev.ferry.cli;

import dev.ferry.lab.LabConfig;
import dev.ferry.migration.DiskBackend;
import dev.ferry.runtime.Exec;
import dev.ferry.runtime.Files2;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The lab's network disks: a directory per disk in the lab's durable state
 * ({@code /var/lib/ferry/LAB/disks/NAME}, standing for a remote volume), attached to a host by
 * a bind mount onto that host's agent directory ({@code /run/ferry/LAB/hosts/HOST/disks/NAME}),
 * where pods mount it from. Lab down unmounts and removes everything.
 */
public final class LabDisks implements DiskBackend {
  private final LabConfig config;

  public LabDisks(LabConfig config) {
    this.config = config;
  }

  /** Where the disk's data lives. */
  public Path store(String disk) {
    return config.stateDir().resolve("disks").resolve(disk);
  }

  /** Where a host sees the disk while it is attached. */
  public Path attachPoint(String disk, String host) {
    return config.host(host).stateDir().resolve("disks").resolve(disk);
  }

  @Override
  public void create(String disk) {
    try {
      Files.createDirectories(store(disk));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create disk " + disk, e);
    }
  }

  @Override
  public void attach(String disk, String host) {
    Path at = attachPoint(disk, host);
    if (mounted(at)) {
      return;
    }
    try {
      Files.createDirectories(at);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot attach disk " + disk + " to " + host, e);
    }
    Exec.checked("mount", "--bind", store(disk).toString(), at.toString());
  }

  @Override
  public void detach(String disk, String host) {
    Path at = attachPoint(disk, host);
    if (mounted(at) && !Exec.run("umount", at.toString()).ok()) {
      Exec.checked("umount", "-l", at.toString()); // busy: a frozen tree keeps its own view until it ends
    }
    try {
      Files.deleteIfExists(at);
    } catch (IOException e) {
      // an empty directory left behind: harmless, the next attach reuses it
    }
  }

  @Override
  public void delete(String disk) {
    for (LabConfig.HostEntry h : config.hosts()) {
      if (mounted(attachPoint(disk, h.name()))) {
        throw new IllegalStateException("disk " + disk + " is still attached to " + h.name());
      }
    }
    Files2.deleteTree(store(disk));
  }

  @Override
  public List<String> attachedTo(String disk) {
    List<String> out = new ArrayList<>();
    for (LabConfig.HostEntry h : config.hosts()) {
      if (mounted(attachPoint(disk, h.name()))) {
        out.add(h.name());
      }
    }
    return out;
  }

  private static boolean mounted(Path p) {
    return Files2.mountsUnder(p).contains(p.toString());
  }
}
