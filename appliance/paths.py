"""Where the processes keep their data when no directory is given.

`$BLVM_DATADIR`, else `$XDG_DATA_HOME/blvm`, else `~/.local/share/blvm`: one root, so the
Stratum module finds the node's RPC cookie where `blvm node` wrote it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_root", "node_datadir"]


def data_root() -> Path:
    base = os.environ.get("BLVM_DATADIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "blvm"
    )
    return Path(base)


def node_datadir(chain: str) -> Path:
    """The node's default data directory for `chain` (its RPC cookie lives there)."""
    return data_root() / chain
