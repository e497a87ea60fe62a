#!/usr/bin/env bash
# Install btcd (an independent Go full node) from the Go module proxy, pinned, as the real
# peer of the node's P2P interop tests. Idempotent: skipped when the pinned version is there.
#   BLVM_CACHE  cache root (default ~/.cache/blvm); the binary lands in $BLVM_CACHE/go/bin/btcd
set -euo pipefail
BTCD_VERSION="v0.24.2"
CACHE="${BLVM_CACHE:-$HOME/.cache/blvm}"
BIN="$CACHE/go/bin"
STAMP="$BIN/.btcd-$BTCD_VERSION"
if [ -x "$BIN/btcd" ] && [ -f "$STAMP" ]; then
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "install-btcd: installing Debian's golang-go" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq golang-go >/dev/null
fi
mkdir -p "$BIN"
echo "install-btcd: building btcd $BTCD_VERSION (a few minutes, once)" >&2
GOBIN="$BIN" GOPATH="$CACHE/gopath" GOFLAGS=-modcacherw \
    go install "github.com/btcsuite/btcd@$BTCD_VERSION"
touch "$STAMP"
