#!/usr/bin/env bash
# Cold migration benchmark: Redis holding 64 MiB, 256 MiB and 1 GiB, Ferry vs plain
# runc checkpoint / copy / restore in the same run. Writes bench/results/cold-migration.{json,md}.
# Extra arguments go to `ferry bench`, e.g. --sizes 64 --runs 1 for a quick look.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bin/ferry bench "$@"
