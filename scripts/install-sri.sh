#!/usr/bin/env bash
# Install the Stratum V2 Reference Implementation (SRI) roles from crates.io, used as real
# peers by the SV2 interop tests (tests/interop/). Idempotent: a role already installed at its
# pinned version is skipped without touching the network, so a warm cache costs a second.
#
# Usage: scripts/install-sri.sh [ROLE...]     (default: all roles, in the order below)
#   BLVM_CACHE   cache root (default ~/.cache/blvm); binaries land in $BLVM_CACHE/sri/bin,
#                the shared build directory is $BLVM_CACHE/cargo-target.
#   SRI_JOBS     cargo build jobs (default: cargo's own default)
#
# Pins (checked against the crates.io index, 2026-11-25) and why:
#   pool_sv2 0.7.0            newest. Takes templates from an SV2 Template Provider over TCP/Noise
#                             ([template_provider_type.Sv2Tp] address = "host:port"), i.e. from
#                             our node. Its embedded Job Declaration Server ([jds] table) refuses
#                             to start unless template_provider_type = BitcoinCoreIpc.
#   translator_sv2 0.6.0      newest. SV1 downstream, SV2 upstream (pool or JD client).
#   jd_client_sv2 0.6.0       newest. Accepts [template_provider_type.Sv2Tp] as well as
#                             BitcoinCoreIpc, so it works against our template provider.
#                             (The crate `jd_client` 0.1.x is an old library-only release.)
#   jd_server                 NOT installable as a separate role: no crate named `jd_server`
#                             exists, and every `jd_server_sv2` release (0.1.0 .. 0.6.0) is a
#                             library without a binary; the JDS only runs embedded in pool_sv2,
#                             and only against Bitcoin Core over IPC (no Sv2Tp / RPC backend).
#                             No older version avoids this, so nothing is pinned for it.
#   mining_device             no crate of that name; the SRI CPU miner ships as the binary
#                             `mining_device` of `integration_tests_sv2` 0.6.0 (built with
#                             `--bin mining_device`; it links pool/translator/jdc 0.6-0.7 libs).
# Cold build on a shared 2-core box (nice 19): translator 1157 s, jd_client 273 s,
# mining_device 945 s, pool 144 s (shared target dir; see docs/dev/sri-peers.md).
# All SRI app crates need rustc >= 1.88. pool_sv2 and jd_client_sv2 compile Bitcoin Core's
# Cap'n Proto IPC schema (capnpc), which needs the `capnp` compiler (Debian `capnproto`) and
# the standard schema /usr/include/capnp/c++.capnp (Debian `libcapnp-dev`).
# translator_sv2/jd_client_sv2 (default feature `monitoring` -> asic-rs) build aws-lc-sys,
# which needs cmake and a C compiler.
set -euo pipefail

CACHE="${BLVM_CACHE:-$HOME/.cache/blvm}"
ROOT="$CACHE/sri"
export CARGO_TARGET_DIR="$CACHE/cargo-target"
LOG="$ROOT/build-times.log"

# role name -> "crate version [extra cargo args]"
declare -A PIN=(
  [pool_sv2]="pool_sv2 0.7.0"
  [translator_sv2]="translator_sv2 0.6.0"
  [jd_client_sv2]="jd_client_sv2 0.6.0"
  [mining_device]="integration_tests_sv2 0.6.0 --bin mining_device"
)
ORDER=(pool_sv2 translator_sv2 jd_client_sv2 mining_device)

die() { echo "install-sri: $*" >&2; exit 1; }

need_apt=()
command -v capnp >/dev/null 2>&1 || need_apt+=(capnproto)
# the IPC schema imports /capnp/c++.capnp, which Debian ships in libcapnp-dev
[ -f /usr/include/capnp/c++.capnp ] || need_apt+=(libcapnp-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
if ((${#need_apt[@]})); then
  echo "install-sri: installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust >= 1.88 (rustup) first"

mkdir -p "$ROOT" "$CARGO_TARGET_DIR"

installed() {  # installed CRATE VERSION -> 0 if cargo's install record lists it
  local crate=$1 version=$2
  [ -f "$ROOT/.crates2.json" ] || return 1
  grep -q "\"$crate $version (" "$ROOT/.crates2.json"
}

roles=("$@")
((${#roles[@]})) || roles=("${ORDER[@]}")

status=0
for role in "${roles[@]}"; do
  [ -n "${PIN[$role]:-}" ] || die "unknown role '$role' (known: ${ORDER[*]})"
  read -r crate version extra <<<"${PIN[$role]}"
  if installed "$crate" "$version" && [ -x "$ROOT/bin/$role" ]; then
    echo "install-sri: $role ($crate $version) already installed: $ROOT/bin/$role"
    continue
  fi
  echo "install-sri: building $role ($crate $version) ..."
  start=$(date +%s)
  # shellcheck disable=SC2086  # $extra is a deliberate word list
  if cargo install --locked --version "$version" --root "$ROOT" ${SRI_JOBS:+-j "$SRI_JOBS"} \
      "$crate" $extra; then
    secs=$(( $(date +%s) - start ))
    echo "$(date -u +%FT%TZ) $role $crate $version ok ${secs}s" >>"$LOG"
    echo "install-sri: $role built in ${secs}s: $ROOT/bin/$role"
  else
    secs=$(( $(date +%s) - start ))
    echo "$(date -u +%FT%TZ) $role $crate $version FAILED ${secs}s" >>"$LOG"
    echo "install-sri: $role ($crate $version) FAILED after ${secs}s" >&2
    status=1
  fi
done
exit $status
