#!/usr/bin/env bash
# Reconcile benchmark (issue #7): 1,000 PodMigrations reconciled by the real controller
# (PodMigrationReconciler under java-operator-sdk) against fabric8's mock API server in CRUD
# mode, the engine faked at its boundary so that every migration goes straight to Succeeded.
# A warm-up run, then 3 measured runs in one JVM: reconciles/s, objects/s, heap after GC, peak
# RSS. Prints the Markdown table and writes bench/results/k8s-reconcile.{json,md}. Takes about
# 10 minutes. Extra arguments go to Maven, e.g. -Dferry.bench.k8s.objects=200
# -Dferry.bench.k8s.runs=1 -Dferry.bench.k8s.warmup=0 for a quick look (also .engineThreads).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="$PWD/bench/results"
LOG="$(mktemp -t ferry-k8s-reconcile.XXXXXX.log)"
echo "[bench] k8s-reconcile: building ferry-kubernetes and running the benchmark (log: $LOG)" >&2
# the benchmark is a test class outside the normal test run, selected here by name and switched
# on by ferry.bench.k8s.out; -am builds the modules it needs from this checkout
if ! mvn -B -pl ferry-kubernetes -am test -Dtest=K8sReconcileBenchmark -Dsurefire.failIfNoSpecifiedTests=false \
    -Dferry.bench.k8s.out="$OUT" -DargLine="-Xmx1g" "$@" >"$LOG" 2>&1; then
  grep -E '\[bench\]|\[ERROR\]' "$LOG" | head -40 >&2 || true
  echo "[bench] k8s-reconcile failed; the whole Maven output is in $LOG" >&2
  exit 1
fi
grep -F '[bench]' "$LOG" >&2 || true
rm -f "$LOG"
cat "$OUT/k8s-reconcile.md"
