#!/usr/bin/env bash
# Runs the kernel benchmarks with the same permission flags as the gini task.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO="$(bash scripts/deno.sh)"
"$DENO" run --allow-all --no-prompt --unstable-worker-options scripts/bench.ts "$@"
"$DENO" run --allow-all --no-prompt --unstable-worker-options scripts/bench_check.ts
"$DENO" run --allow-all --no-prompt --unstable-worker-options scripts/bench_plan.ts
"$DENO" run --allow-all --no-prompt scripts/bench_download.ts
"$DENO" run --allow-all --no-prompt scripts/bench_seed.ts
"$DENO" run --allow-all --no-prompt scripts/bench_journal.ts
"$DENO" run --allow-all --no-prompt scripts/bench_lifecycle.ts
