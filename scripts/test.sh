#!/usr/bin/env bash
# Runs Ferry's tests: unit tests, then integration tests on real runc, CRIU and network
# namespaces (as root). Prepares the host first, and fails if the tests leave anything behind.
set -euo pipefail
FERRY_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FERRY_HOME
bash "$FERRY_HOME/scripts/setup-host.sh"
cd "$FERRY_HOME"

snapshot() { { ip netns list | awk '{print "netns " $1}'; runc list -q | sed 's/^/container /'; } | sort; }
before="$(snapshot)"
mvn -B verify "$@"
after="$(snapshot)"
left="$(comm -13 <(echo "$before") <(echo "$after"))"
if [[ -n "$left" ]]; then
  echo "[ferry test] the tests left these behind:" >&2
  echo "$left" >&2
  exit 1
fi
if pgrep -f 'dev.ferry.cli.Main (agent|load-client)|dev.ferry.agent.PageDaemon' >/dev/null; then
  echo "[ferry test] Ferry processes left running:" >&2
  pgrep -af 'dev.ferry.cli.Main (agent|load-client)|dev.ferry.agent.PageDaemon' >&2
  exit 1
fi
echo "[ferry test] nothing left behind (namespaces, containers, agents)"
