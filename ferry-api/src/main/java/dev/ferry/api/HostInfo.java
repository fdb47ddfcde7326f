package dev.ferry.api;

import java.util.Map;

/**
 * What an agent says about its host.
 *
 * @param host host name in the lab
 * @param address address other agents reach this one at (data port included)
 * @param capabilities what the capability probe found (CRIU version, checks, features)
 * @param memoryCapacityMiB memory that pods may reserve on this host
 * @param memoryReservedMiB memory reserved by pods and placeholders now
 * @param warmedUp whether the agent's start-up warm-up of its migration paths is over (before,
 *     a migration works but its frozen window is longer, and the warm-up competes for the CPUs)
 * @param peerTls whether this agent talks to other agents (images, memory, identities) over
 *     mutual TLS; false: in clear
 */
public record HostInfo(
    String host,
    String address,
    Map<String, Object> capabilities,
    long memoryCapacityMiB,
    long memoryReservedMiB,
    boolean warmedUp,
    boolean peerTls) {}
