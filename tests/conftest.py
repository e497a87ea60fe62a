"""Shared test fixtures: where Bitcoin Core's vectors live, interop policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BLVM_SHARED", REPO.parent / "shared"))
CORE_VECTORS = SHARED / "vectors" / "bitcoin-core"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def core_vectors() -> Path:
    if not CORE_VECTORS.is_dir():
        pytest.fail(f"Bitcoin Core vectors not found at {CORE_VECTORS}; set BLVM_SHARED")
    return CORE_VECTORS


def require_interop(reason: str) -> None:
    """Skip when a real peer is missing, or fail when BLVM_REQUIRE_INTEROP=1 (CI)."""
    if os.environ.get("BLVM_REQUIRE_INTEROP") == "1":
        pytest.fail(f"real peer required but missing: {reason}")
    pytest.skip(reason)
