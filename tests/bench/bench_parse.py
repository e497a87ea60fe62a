"""Block parsing benchmark: mainnet block 413567 (1 MB, 1,557 txs) and the regtest chain.

Run: ``python tests/bench/bench_parse.py [--quick]``; prints one JSON object.

- ``parse_ms_*``: ``Block.from_bytes`` of block 413567 (wall clock; ``parse_cpu_ms_min`` is
  process CPU time, steadier on a shared machine). Every TxIn/TxOut is a real object.
  Freeing a parsed block is timed apart: ``free_block_ms_min``.
- ``txid_merkle_ms_*``: txids of a freshly parsed block plus the merkle root (what Core's
  Python test framework times as "merkle root", 10.8 ms there); ``merkle_only_ms_*``:
  the root from ready txids.
- ``tx_per_s``: transactions parsed per second at the median parse time.
- ``pbk_block_ms_*``: the same bytes through ``pbk.Block(raw)`` (py-bitcoinkernel), for
  comparison; it is dominated by the binding's byte-by-byte ctypes copy.
- ``regtest_206_blocks_parse_ms``: all 206 regtest fixture blocks, parsed once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocols.bitcoin.block import Block
from protocols.bitcoin.merkle import merkle_root

REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("BLVM_SHARED", REPO.parent / "shared")) / "vectors" / "bitcoin-core"


def _times(fn, n: int) -> tuple[list[float], list[float]]:
    """Wall and CPU ms per call; the result is freed after the clock stops, so freeing
    the previous block's objects is not charged to the next parse."""
    wall, cpu = [], []
    for _ in range(n):
        c0 = time.process_time()
        t0 = time.perf_counter()
        result = fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        del result
    return wall, cpu


def run(iterations: int) -> dict[str, object]:
    raw = (VECTORS / "block413567.raw").read_bytes()
    block = Block.from_bytes(raw)
    n_tx = len(block.txs)

    wall, cpu = _times(lambda: Block.from_bytes(raw), iterations)
    parse_min, parse_med = min(wall), statistics.median(wall)

    frees = []
    for _ in range(max(1, iterations // 4)):
        parsed = Block.from_bytes(raw)
        t0 = time.perf_counter()
        del parsed
        frees.append((time.perf_counter() - t0) * 1e3)

    txm = []
    for _ in range(iterations):  # txids are cached per Tx, so each run needs a fresh parse
        txs = Block.from_bytes(raw).txs
        t0 = time.perf_counter()
        merkle_root([tx.txid for tx in txs])
        txm.append((time.perf_counter() - t0) * 1e3)
    txids = [tx.txid for tx in block.txs]
    root, mutated = merkle_root(txids)
    assert root == block.header.merkle_root and not mutated
    mk, _ = _times(lambda: merkle_root(txids), iterations)

    result: dict[str, object] = {
        "block": "413567",
        "block_bytes": len(raw),
        "txs": n_tx,
        "inputs": sum(len(tx.inputs) for tx in block.txs),
        "outputs": sum(len(tx.outputs) for tx in block.txs),
        "iterations": iterations,
        "parse_ms_min": round(parse_min, 3),
        "parse_ms_median": round(parse_med, 3),
        "parse_cpu_ms_min": round(min(cpu), 3),
        "tx_per_s": round(n_tx / (parse_med / 1e3)),
        "free_block_ms_min": round(min(frees), 3),
        "txid_merkle_ms_min": round(min(txm), 3),
        "txid_merkle_ms_median": round(statistics.median(txm), 3),
        "merkle_only_ms_min": round(min(mk), 3),
        "merkle_only_ms_median": round(statistics.median(mk), 3),
    }

    try:
        import pbk
    except ImportError:  # the kernel is a project dependency; report rather than fail
        result["pbk_block_ms_min"] = None
        result["pbk_block_ms_median"] = None
    else:
        pw, _ = _times(lambda: pbk.Block(raw), max(1, iterations // 4))
        result["pbk_block_ms_min"] = round(min(pw), 3)
        result["pbk_block_ms_median"] = round(statistics.median(pw), 3)

    lines = (VECTORS / "regtest_blocks_1_206.txt").read_text().split()
    chain = [bytes.fromhex(line) for line in lines]
    t0 = time.perf_counter()
    for data in chain:
        Block.from_bytes(data)
    result["regtest_206_blocks_parse_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
    return result


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (CI smoke run)")
    parser.add_argument("--iterations", type=int, help="override the iteration count")
    args = parser.parse_args(argv)
    iterations = args.iterations or (5 if args.quick else 100)
    result = run(iterations)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
