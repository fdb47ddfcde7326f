package dev.ferry.api;

/**
 * What the world knows a pod by; it moves with the pod and never has two live owners.
 *
 * @param uid unique id, kept across migrations
 * @param name pod name, unique in the lab
 * @param ip IPv4 address on the lab network
 * @param prefixLength length of the lab network prefix
 * @param mac MAC address of the pod's interface, moved with the IP
 */
public record PodIdentity(String uid, String name, String ip, int prefixLength, String mac) {}
