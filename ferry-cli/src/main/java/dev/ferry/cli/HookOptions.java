package dev.ferry.cli;

import dev.ferry.migration.HookSpec;
import java.time.Duration;
import picocli.CommandLine.Option;

/** The hook options of {@code ferry migrate} and {@code ferry demo}. */
final class HookOptions {
  /** Admission hook. */
  @Option(names = "--pre-hook", paramLabel = "CMD|URL",
      description = "pre-migration hook: an executable (absolute path, JSON payload on stdin, exit 0 admits) or an"
          + " http(s) webhook (JSON POSTed, 2xx admits); called before anything is prepared or frozen")
  String preHook;

  /** Hook after the identity hand-over. */
  @Option(names = "--post-hook", paramLabel = "CMD|URL",
      description = "post-migration hook, called once the pod runs on the target with its identity and the migration"
          + " is committed (e.g. to update a service registry)")
  String postHook;

  /** Hook timeout. */
  @Option(names = "--hook-timeout", defaultValue = "10000", paramLabel = "MS",
      description = "how long a hook call may take, in ms (default: ${DEFAULT-VALUE}); a late hook counts as failed")
  long hookTimeoutMs;

  /** Failure policy. */
  @Option(names = "--hook-failure", defaultValue = "abort", paramLabel = "abort|ignore",
      description = "what a failing or timed-out hook does: abort (default: a failing pre-hook stops the migration"
          + " before anything is frozen, the source keeps running; a failing post-hook, past the commit point, moves the"
          + " pod back by a second migration) or ignore (recorded in the report, the migration goes on)")
  String hookFailure;

  HookSpec.Hooks hooks() {
    Duration t = Duration.ofMillis(hookTimeoutMs);
    return new HookSpec.Hooks(preHook == null ? null : new HookSpec(preHook, t, hookFailure),
        postHook == null ? null : new HookSpec(postHook, t, hookFailure));
  }
}
