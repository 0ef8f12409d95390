#!/usr/bin/env bash
# The whole check: formatting, lint, type check, then every test. Ends with
# "N passed, N failed" taken from Deno's summary.
set -uo pipefail
cd "$(dirname "$0")/.."
DENO="$(bash scripts/deno.sh)"
export NO_COLOR=1

"$DENO" fmt --check || exit 1
"$DENO" lint || exit 1
"$DENO" check main.ts cli/ kernel/ workers/ plugins/ tests/ scripts/ || exit 1

# Everything the tests make in temporary folders goes under one, removed at the end.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/gini-tests.XXXXXX")"
# Open like /tmp itself: libvirt's QEMU runs as its own user and reads the test's files.
chmod 0755 "$tmp"
trap 'rm -rf --one-file-system "$tmp"' EXIT
export TMPDIR="$tmp"

log="$(mktemp)"
"$DENO" test --allow-all --no-prompt --unstable-worker-options "$@" 2>&1 | tee "$log"
status="${PIPESTATUS[0]}"
summary="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n1)"
rm -f "$log"
passed="$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")"
failed="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")"
echo "${passed:-0} passed, ${failed:-0} failed"
if [ -z "$summary" ]; then
  echo "no test summary found" >&2
  exit 1
fi
exit "$status"
