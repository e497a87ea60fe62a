"""Header validation throughput (full PoW, retarget, MTP checks) on Core's mainnet_alt chain.

The 2016 headers are validated into fresh trees repeatedly; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.chain.headers import HeaderTree
from node.chain.params import MAINNET
from tests.conftest import CORE_VECTORS
from tests.helpers import mainnet_alt

NOW = 1_800_000_000


def run(quick: bool) -> dict[str, object]:
    headers = mainnet_alt.headers(CORE_VECTORS, MAINNET.genesis_hash)
    rounds = 3 if quick else 25
    best = float("inf")
    for _ in range(rounds):
        tree = HeaderTree(MAINNET)
        accept = tree.accept
        t = time.perf_counter()
        for raw in headers:
            accept(raw, NOW)
        best = min(best, time.perf_counter() - t)
        assert tree.height == len(headers)
    hex_lines = [h.hex() for h in headers]
    t = time.perf_counter()
    tree = HeaderTree(MAINNET)
    for line in hex_lines:
        tree.accept(bytes.fromhex(line), NOW)
    with_hex = time.perf_counter() - t
    return {
        "quick": quick,
        "headers": len(headers),
        "rounds": rounds,
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "headers_per_s": round(len(headers) / best),
        "headers_per_s_from_hex": round(len(headers) / with_hex),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI)")
    args = parser.parse_args(argv)
    result = run(args.quick)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
