#!/usr/bin/env bash
# Runtime benchmark (issue 8): the same Redis pod, holding 64 and 256 MiB under the demo's write
# load, migrated cold between two lab hosts on runc + CRIU and on gVisor's runsc, in one run.
# Each cell is one `ferry demo` (its own lab, taken down after). Prints a table and writes
# bench/results/runtimes.{json,md}.
#
#   bash bench/runtimes.sh                 # sizes 64 and 256 MiB, one run each
#   SIZES="64" RUNS=2 bash bench/runtimes.sh
#
# Columns: frozen ms (checkpoint start -> target running, Ferry's clock), the client's longest gap
# between two acknowledged writes (runsc: includes its reconnect, since runsc cannot keep the
# connection), bytes moved in all and while frozen, writes acknowledged and lost.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FERRY="${FERRY:-bin/ferry}"
SIZES="${SIZES:-64 256}"
RUNS="${RUNS:-1}"
LAB="${LAB:-benchrt}"
OUT=bench/results
command -v python3 >/dev/null || { echo "bench/runtimes.sh needs python3 to tabulate the reports" >&2; exit 1; }
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for size in $SIZES; do
  for run in $(seq 1 "$RUNS"); do
    for rt in runc runsc; do
      echo "== $rt, $size MiB, run $run" >&2
      # one cell's failure is a result too: its report says why
      "$FERRY" demo --runtime "$rt" --strategy cold --data-mib "$size" --demo-lab "$LAB" --probe-hz 0 \
        --json-report "$TMP/$rt-$size-$run.json" >"$TMP/$rt-$size-$run.log" 2>&1 || true
      grep -E '^Ferry demo|^  (client|connection|downtime|frozen|moved) ' "$TMP/$rt-$size-$run.log" | cut -c1-200 >&2 || \
        tail -5 "$TMP/$rt-$size-$run.log" >&2
    done
  done
done

python3 - "$TMP" "$OUT" <<'PY'
import json, os, sys, glob, platform, datetime
tmp, out = sys.argv[1], sys.argv[2]
rows = []
for f in sorted(glob.glob(os.path.join(tmp, "*.json"))):
    rt, size, run = os.path.basename(f)[:-5].split("-")
    r = json.load(open(f))
    rows.append({
        "runtime": rt, "runtimeDetail": r.get("runtime"), "runtimeVersion": r.get("runtimeVersion"),
        "dataMiB": int(size), "run": int(run), "outcome": r.get("outcome"), "strategy": r.get("strategy"),
        "frozenMs": r.get("frozenMs"), "downtimeMs": r.get("downtimeMs"),
        "clientReconnectMs": r.get("clientReconnectMs"), "tcpConnectionPreserved": r.get("tcpConnectionPreserved"),
        "bytesTransferred": r.get("bytesTransferred"), "frozenBytesTransferred": r.get("frozenBytesTransferred"),
        "writesAcked": r.get("writesAcked"), "writesLost": r.get("writesLost"),
        "frozenBreakdownMs": r.get("frozenBreakdownMs"), "error": r.get("error")})
rows.sort(key=lambda x: (x["dataMiB"], x["run"], x["runtime"]))
meta = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "kernel": platform.release(),
        "cpus": os.cpu_count(), "cells": rows}
json.dump(meta, open(os.path.join(out, "runtimes.json"), "w"), indent=2)
def mb(b): return "-" if b is None else "%.1f" % (b / 1e6)
def v(x): return "-" if x is None else str(x)
def part(r, k): return v((r["frozenBreakdownMs"] or {}).get(k))
head = ("| runtime | data MiB | outcome | frozen ms | checkpoint ms | transfer ms | restore ms | client gap ms | "
        "connection kept | MB moved | MB while frozen | writes acked | lost |")
lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
for r in rows:
    lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        r["runtimeDetail"] or r["runtime"], r["dataMiB"], r["outcome"], v(r["frozenMs"]), part(r, "checkpoint"),
        part(r, "transfer"), part(r, "restore"), v(r["downtimeMs"]),
        "yes" if r["tcpConnectionPreserved"] else "no (reconnect %s ms)" % v(r["clientReconnectMs"]),
        mb(r["bytesTransferred"]), mb(r["frozenBytesTransferred"]), v(r["writesAcked"]), v(r["writesLost"])))
md = ["# Runtimes: runc + CRIU vs gVisor runsc, cold migration of Redis under write load", "",
      "%s, kernel %s, %s CPUs; `bash bench/runtimes.sh`. Frozen: checkpoint start to target running (Ferry's clock);"
      " client gap: the longest time between two acknowledged writes as the client saw it (runsc: the client's"
      " connection is drained before the checkpoint, so this includes its reconnect)." % (meta["date"], meta["kernel"],
      meta["cpus"]), ""] + lines + [""]
for r in rows:
    if r["error"]:
        md.append("- %s %d MiB: %s" % (r["runtime"], r["dataMiB"], r["error"].splitlines()[0][:300]))
open(os.path.join(out, "runtimes.md"), "w").write("\n".join(md) + "\n")
print("\n".join(lines))
PY
echo "wrote $OUT/runtimes.json and $OUT/runtimes.md" >&2
