package dev.ferry.migration;

import java.time.Duration;

/**
 * One migration hook: an executable (the payload on its stdin) or an HTTP(S) webhook (the
 * payload POSTed as JSON).
 *
 * @param target an absolute path to an executable, or an http:// or https:// URL
 * @param timeout how long a call may take before it counts as failed ("timeout")
 * @param onFailure "abort" (the migration stops and rolls back) or "ignore" (recorded, the migration goes on)
 */
public record HookSpec(String target, Duration timeout, String onFailure) {
  public HookSpec {
    if (target == null || target.isBlank()) {
      throw new IllegalArgumentException("a hook needs an executable or a URL");
    }
    if (!isUrl(target) && !target.startsWith("/")) {
      throw new IllegalArgumentException("hook '" + target + "' is neither an absolute path to an executable nor an"
          + " http(s) URL");
    }
    timeout = timeout == null ? Duration.ofSeconds(10) : timeout;
    if (timeout.isNegative() || timeout.isZero() || timeout.toMinutes() > 10) {
      throw new IllegalArgumentException("hook timeout " + timeout.toMillis() + " ms is out of range (1 ms .. 10 min)");
    }
    onFailure = onFailure == null ? "abort" : onFailure;
    if (!onFailure.equals("abort") && !onFailure.equals("ignore")) {
      throw new IllegalArgumentException("hook failure policy must be 'abort' or 'ignore', not '" + onFailure + "'");
    }
  }

  /** Whether the target is a webhook URL. */
  public boolean url() {
    return isUrl(target);
  }

  private static boolean isUrl(String t) {
    return t.startsWith("http://") || t.startsWith("https://");
  }

  /** The hooks of one migration; either may be null. */
  public record Hooks(HookSpec pre, HookSpec post) {
    public static final Hooks NONE = new Hooks(null, null);

    /** As recorded in the store. */
    public String toJson() {
      java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
      m.put("pre", pre == null ? null : pre.asMap());
      m.put("post", post == null ? null : post.asMap());
      return dev.ferry.api.Json.write(m);
    }

    /** From the store ({@link #NONE} for null). */
    public static Hooks fromJson(String json) {
      if (json == null) {
        return NONE;
      }
      com.fasterxml.jackson.databind.JsonNode n = dev.ferry.api.Json.read(json, com.fasterxml.jackson.databind.JsonNode.class);
      return new Hooks(fromNode(n.path("pre")), fromNode(n.path("post")));
    }

    private static HookSpec fromNode(com.fasterxml.jackson.databind.JsonNode n) {
      return n.isObject() ? new HookSpec(n.path("target").asText(), Duration.ofMillis(n.path("timeoutMs").asLong()),
          n.path("onFailure").asText()) : null;
    }
  }

  private java.util.Map<String, Object> asMap() {
    return java.util.Map.of("target", target, "timeoutMs", timeout.toMillis(), "onFailure", onFailure);
  }
}
