package dev.ferry.agent;

import java.util.regex.Pattern;

/** Validation of names that end up in paths, namespace names and container ids. */
public final class Names {
  private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?");
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");

  private Names() {}

  /** A pod, container or host name: lower-case letters, digits and '-', at most 32 characters. */
  public static String check(String what, String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw ApiException.badRequest(what + " name '" + name
          + "' is invalid: use 1-32 lower-case letters, digits and '-', starting and ending with a letter or digit");
    }
    return name;
  }

  /** A migration id: letters, digits, '-', '_' and '.', no path characters. */
  public static String checkId(String id) {
    if (id == null || !ID.matcher(id).matches() || id.contains("..")) {
      throw ApiException.badRequest("migration id '" + id + "' is invalid");
    }
    return id;
  }
}
