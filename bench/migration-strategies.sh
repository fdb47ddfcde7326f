#!/usr/bin/env bash
# Migration benchmark: Redis holding 256 MiB and 1 GiB under a steady write load, moved by each
# of Ferry's strategies (cold, precopy, postcopy, hybrid, auto with a 300 ms budget), beside
# plain runc checkpoint / copy / restore in the same run. Writes
# bench/results/migration-strategies.{json,md}. Extra arguments go to `ferry bench`, e.g.
# --sizes 64 --runs 1 for a quick look, or --strategies cold,precopy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bin/ferry bench "$@"
