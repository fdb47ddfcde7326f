#!/usr/bin/env bash
# TLS CPU benchmark (issue #5): what one transfer costs in CPU per GiB over plain TCP, over
# mutual TLS through JSSE and through BoringSSL, sender and receiver in one JVM over loopback
# (full JIT), 256 MiB of incompressible data, compression off and auto; 4 untimed rounds of every
# case, then 5 timed, interleaved. Prints the Markdown table and writes
# bench/results/tls-cpu.md. Takes about a minute. Extra arguments go to Maven, e.g.
# -Dferry.bench.tls.mib=64 -Dferry.bench.tls.runs=1 -Dferry.bench.tls.warmup=1 for a quick look.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="$PWD/bench/results"
LOG="$(mktemp -t ferry-tls-cpu.XXXXXX.log)"
echo "[bench] tls-cpu: building ferry-transfer and running the benchmark (log: $LOG)" >&2
# a test class outside the normal test run, selected by name and switched on by ferry.bench.tls.out
props=(-Dferry.bench.tls.out="$OUT")
for a in "$@"; do [[ "$a" == -Dferry.bench.tls.* ]] && props+=("$a"); done
if ! mvn -B -pl ferry-transfer -am test -Dtest=TlsCpuBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
    "${props[@]}" -DargLine="-Xmx1g ${props[*]}" "$@" >"$LOG" 2>&1; then
  grep -E '\[bench\]|\[ERROR\]' "$LOG" | head -40 >&2 || true
  echo "[bench] tls-cpu failed; the whole Maven output is in $LOG" >&2
  exit 1
fi
grep -F '[bench]' "$LOG" >&2 || true
rm -f "$LOG"
cat "$OUT/tls-cpu.md"
