"""Shared output helpers so every command prints JSON the same way."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(result: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    """Print ``result`` as one JSON object, or ``human`` text (falls back to key: value lines)."""
    if as_json:
        json.dump(result, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
        return
    if human is None:
        human = "\n".join(f"{key}: {value}" for key, value in result.items())
    print(human)
