#!/usr/bin/env bash
# The full fault matrix: every fault (agents, coordinator and CRIU killed -9, the link cut or
# flapping, packet loss, a corrupt or truncated image, the target's disk full, a failing or
# hanging hook, a cancel racing the commit) at every phase it applies to, for every strategy,
# each against Redis under write load; the invariants are checked after every cell. Writes
# bench/results/chaos.{json,md}; takes about an hour. Extra arguments go to `ferry chaos`, e.g.
# --strategy cold, or --fault link-down.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bin/ferry chaos --json bench/results/chaos.json "$@"
