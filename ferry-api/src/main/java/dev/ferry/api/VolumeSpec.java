package dev.ferry.api;

/**
 * A directory from outside the pod's rootfs, bind-mounted into its app containers.
 *
 * @param name volume name: for "host", a directory the pod owns on its host (copied with the
 *     pod when it migrates); for "disk", the name of a lab network disk (attached to one host
 *     at a time, moved by detaching and attaching it)
 * @param kind "host" or "disk"
 * @param mountPath absolute path inside the containers
 */
public record VolumeSpec(String name, String kind, String mountPath) {
  public VolumeSpec {
    if (!"host".equals(kind) && !"disk".equals(kind)) {
      throw new IllegalArgumentException("volume kind must be 'host' or 'disk', not '" + kind + "'");
    }
    if (mountPath == null || !mountPath.startsWith("/") || mountPath.contains("..") || mountPath.equals("/")) {
      throw new IllegalArgumentException("volume mount path '" + mountPath + "' must be an absolute path below /");
    }
  }
}
