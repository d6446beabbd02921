#!/usr/bin/env bash
# Builds the cross-language interop tools outside the repo (idempotent).
# Output folder: $STAN_INTEROP_BIN, default /opt/stan-tools/interop:
#   stan-interop            Go, on github.com/nats-io/stan.go v0.10.4 (needs go)
#   stan-interop-java.jar   Java, on io.nats:java-nats-streaming 2.2.3 (needs mvn and java 17+)
# A tool whose toolchain is missing is reported and skipped; the tests that need it then skip.
# interop/python/README.md says why the Python client is not among them.
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
if command -v mvn >/dev/null && command -v java >/dev/null; then
  # the build folder is outside the repo too; -B -q: no progress in CI's log, and sed drops the
  # colour codes Maven 3.8 prints even then (pipefail keeps mvn's exit status)
  mvn -B -q -f "$here/java/pom.xml" -Dinterop.build="$out/java-build" package 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g'
  cp "$out/java-build/stan-interop-java.jar" "$out/stan-interop-java.jar"
  echo "interop: Java client tool (java-nats-streaming 2.2.3) at $out/stan-interop-java.jar"
else
  echo "interop: mvn or java not found; Java interop tool not built" >&2
fi
