#!/usr/bin/env bash
# Installs the Go programs the tests and benchmarks run, pinned, with the machine's Go, into a
# folder outside the repository: $STAN_TOOLS_BIN (default $HOME/.cache/stan-ts/bin, or
# /opt/stan-tools/bin when that already holds them). A program whose installed version already
# matches is not rebuilt. Prints the folder on its last line.
#
# To add a program, add one `install_go_tool NAME MODULE@VERSION` line at the end.
set -euo pipefail

if [ -z "${STAN_TOOLS_BIN:-}" ]; then
  if [ -x /opt/stan-tools/bin/nats-streaming-server ]; then
    STAN_TOOLS_BIN=/opt/stan-tools/bin
  else
    STAN_TOOLS_BIN="$HOME/.cache/stan-ts/bin"
  fi
fi
mkdir -p "$STAN_TOOLS_BIN"
export STAN_TOOLS_BIN

if ! command -v go >/dev/null 2>&1; then
  echo "install-go-tools: no 'go' on PATH; install Go (1.21 or newer) to build the official tools" >&2
  exit 1
fi

# install_go_tool NAME MODULE@VERSION: go-installs MODULE@VERSION into $STAN_TOOLS_BIN unless
# the binary NAME there was built from exactly that module version (read with `go version -m`).
install_go_tool() {
  local name=$1 spec=$2
  local module=${spec%@*} version=${spec##*@}
  local bin="$STAN_TOOLS_BIN/$name"
  if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+${module//./\\.}[[:space:]]+${version//./\\.}([[:space:]]|$)"; then
    echo "install-go-tools: $name $version already in $STAN_TOOLS_BIN" >&2
    return 0
  fi
  echo "install-go-tools: building $spec into $STAN_TOOLS_BIN ($(go version))" >&2
  local start=$SECONDS
  GOBIN="$STAN_TOOLS_BIN" go install "$spec"
  echo "install-go-tools: $name built in $((SECONDS - start)) s" >&2
}

install_go_tool nats-streaming-server github.com/nats-io/nats-streaming-server@v0.25.6

echo "$STAN_TOOLS_BIN"
