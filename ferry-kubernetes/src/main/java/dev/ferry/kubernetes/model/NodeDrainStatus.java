package dev.ferry.kubernetes.model;

import java.util.ArrayList;
import java.util.List;

/** How far a drain got. */
public class NodeDrainStatus {
  /** Draining, Drained, Blocked or Failed. */
  public String phase;
  public int migrated;
  public int failed;
  public int skipped;
  /** Pods Ferry cannot migrate that were evicted instead ({@code unmigratable: evict}). */
  public int evicted;
  public int remaining;
  public List<PodEntry> pods = new ArrayList<>();

  /** One pod of the node and its migration. */
  public static class PodEntry {
    public String namespace;
    public String name;
    public String migration;
    public String phase;
    public String reason;
  }
}
