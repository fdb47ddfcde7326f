package dev.ferry.migration;

/**
 * Where service VIPs are served by the kernel (the lab: nftables DNAT rules); the
 * coordinator says which backend a VIP forwards to, the network does it atomically.
 */
public interface ServiceNetwork {
  /** Makes {@code vip:port} forward to {@code backendIp:port} (the pod on {@code backendHost}). Idempotent. */
  void route(String service, String vip, int port, String backendIp, String backendHost);

  /** Stops serving the VIP. Idempotent. */
  void remove(String service, String vip);

  /** The first three octets VIPs are leased from, e.g. "10.77.2.". */
  String vipRange();

  /** A network without VIPs: every call fails with a clear message. */
  ServiceNetwork NONE = new ServiceNetwork() {
    @Override
    public void route(String service, String vip, int port, String backendIp, String backendHost) {
      throw new IllegalStateException("this coordinator has no service network: VIPs are not available");
    }

    @Override
    public void remove(String service, String vip) {}

    @Override
    public String vipRange() {
      throw new IllegalStateException("this coordinator has no service network: VIPs are not available");
    }
  };
}
