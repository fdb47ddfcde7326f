package dev.ferry.api;

/**
 * One call of a migration hook, as the report shows it.
 *
 * @param hook "pre-migration" or "post-migration"
 * @param phase what the call announced: "pre-migration", "post-migration" or "rolled-back"
 * @param target the executable or URL called
 * @param result "ok", "failed" (non-zero exit, HTTP status >= 300, or not reachable) or "timeout"
 * @param ms how long the call took
 * @param answer what the hook said (stdout or the HTTP body, at most 1 KiB), or why it failed
 * @param policy the failure policy that applied: "abort" or "ignore"
 */
public record HookCall(String hook, String phase, String target, String result, long ms, String answer, String policy) {}
