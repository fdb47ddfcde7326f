package dev.ferry.cli.demo;

/** What the load client saw; written as JSON to its control directory. */
public class LoadResult {
  /** The client has a connection and has had at least one write acknowledged. */
  public boolean connected;
  /** Writes Redis acknowledged with +OK. */
  public long acked;
  /** Longest time between two acknowledged writes, ms: the downtime the client saw. */
  public long maxGapMs;
  /** When that longest gap began and ended (the last ack before it, the first after), epoch ms. */
  public long maxGapStartEpochMs;
  public long maxGapEndEpochMs;
  /** Writes sent but never acknowledged (in flight when the connection broke). */
  public long unacked;
  /** Local port of the one connection (same before and after = same connection). */
  public int localPort;
  /** True while the first connection works; false once it broke. */
  public boolean connectionPreserved = true;
  /** Set once the client stopped and read every acknowledged key back. */
  public boolean verified;
  /** Acknowledged keys whose value was missing or wrong on read-back. */
  public long lost;
  /** Whether the read-back went through the original connection. */
  public boolean verifiedOnSameConnection;
  /** (--reconnect) Times the client opened a new connection after its connection broke. */
  public int reconnects;
  /** (--reconnect) Longest time from the last write acknowledged on a broken connection to the first on the next. */
  public long maxReconnectMs;
  /** Last error, if any. */
  public String error;
}
