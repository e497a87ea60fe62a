#!/usr/bin/env bash
# Prepare a fresh Debian machine (or refresh an existing checkout) for BLVM:
# Debian packages, the project venv in .venv, and the package installed editable.
# Idempotent: each step is skipped when already done. Sourced by scripts/run and scripts/test.
set -euo pipefail

BLVM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BLVM_VENV="${BLVM_VENV:-$BLVM_ROOT/.venv}"
export BLVM_CACHE="${BLVM_CACHE:-$HOME/.cache/blvm}"
mkdir -p "$BLVM_CACHE"

_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $* (install sudo or run as root)" >&2; return 1; fi
}

# Debian packages the product and its tests need (python venv support, libusb for pyusb).
blvm_apt_packages=(python3-venv python3-dev libusb-1.0-0 build-essential)
_missing=()
for pkg in "${blvm_apt_packages[@]}" "${BLVM_EXTRA_APT[@]:-}"; do
    [ -n "$pkg" ] || continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || _missing+=("$pkg")
done
if [ "${#_missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian packages: ${_missing[*]}" >&2
    _as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq "${_missing[@]}" >/dev/null
fi

if [ ! -x "$BLVM_VENV/bin/python" ]; then
    echo "bootstrap: creating $BLVM_VENV" >&2
    python3 -m venv "$BLVM_VENV"
fi

# Reinstall only when pyproject.toml changed since the last install.
_stamp="$BLVM_VENV/.blvm-installed"
_want="$(sha256sum "$BLVM_ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$_stamp" ] || [ "$(cat "$_stamp")" != "$_want" ]; then
    echo "bootstrap: installing blvm-appliance and test dependencies into $BLVM_VENV" >&2
    "$BLVM_VENV/bin/python" -m pip install -q --upgrade pip
    "$BLVM_VENV/bin/python" -m pip install -q -e "$BLVM_ROOT[test]"
    echo "$_want" > "$_stamp"
fi
export PATH="$BLVM_VENV/bin:$PATH"
