#!/usr/bin/env bash
# Prints the path of the pinned Deno, fetching it from the npm registry when needed.
set -euo pipefail
DENO_VERSION="2.9.6"
if command -v deno >/dev/null 2>&1 && [ "$(deno --version | head -n1 | cut -d' ' -f2)" = "$DENO_VERSION" ]; then
  command -v deno
  exit 0
fi
npx -y "deno@${DENO_VERSION}" eval --quiet 'console.log(Deno.execPath())' 2>/dev/null | tail -n1
