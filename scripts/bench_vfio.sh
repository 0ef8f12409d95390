#!/usr/bin/env bash
# Times `gini vfio plan` (whole CLI, cold, dry run) on each distribution fixture root; prints the
# median of N runs per root in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
deno="$(bash scripts/deno.sh)"
runs="${1:-7}"
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
for root in tests/fixtures/distros/*/; do
  name="$(basename "$root")"
  device="0000:01:00.0"; extra=()
  [ "$name" = fedora-dracut-bls ] && device="0000:0b:00.0" && extra=(--force)
  times=()
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    "$deno" run --quiet --allow-all --no-prompt --unstable-worker-options main.ts \
      --state-dir "$state" --host-root "$root" vfio plan --device "$device" "${extra[@]}" >/dev/null 2>&1
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "gini vfio plan $name: median ${median} ms over $runs runs"
done
