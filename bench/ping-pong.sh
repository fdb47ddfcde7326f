#!/usr/bin/env bash
# 50 back-to-back migrations of Redis between two hosts under client write load (ping-pong),
# each checked like a chaos cell: every acknowledged write kept, one copy, nothing leaked.
# Writes bench/results/ping-pong.{json,md}. Extra arguments go to `ferry chaos`, e.g.
# --strategy precopy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec bin/ferry chaos --ping-pong "${PING_PONG:-50}" --json bench/results/ping-pong.json "$@"
