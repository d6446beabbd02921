#!/usr/bin/env bash
# Builds the cross-language interop tools outside the repo (idempotent).
# Output folder: $STAN_INTEROP_BIN, default /opt/stan-tools/interop.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${STAN_INTEROP_BIN:-/opt/stan-tools/interop}"
mkdir -p "$out"
if command -v go >/dev/null; then
  (cd "$here/go" && GOTOOLCHAIN=local go build -mod=readonly -o "$out/stan-interop" .)
  echo "interop: Go client tool (stan.go v0.10.4) at $out/stan-interop"
else
  echo "interop: go not found; Go interop tool not built" >&2
fi
