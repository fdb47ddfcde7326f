package dev.ferry.kubernetes.model;

/** The API group and version of Ferry's resources. */
public final class Api {
  public static final String GROUP = "ferry.dev";
  public static final String VERSION = "v1alpha1";

  private Api() {}
}
