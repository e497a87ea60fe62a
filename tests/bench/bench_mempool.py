"""Mempool acceptance rate and block-template latency on a regtest chain with signed spends.

Builds a chain whose coinbases pay our keys, confirms fan-out transactions (up to 2,000
outputs each), then signs ``--txs`` transactions spending those outputs (P2WPKH and P2TR
alternate; every fifth one gets a child, so packages exist) and measures:

- acceptance rate (tx/s) through ``Mempool.accept`` (consensus + policy + kernel scripts),
  and again into a pool limited to half that size (each accept then evicts),
- template build latency (ms) with the full mempool (a fresh builder each time, so the
  cache never answers), and the cached path,
- that the template's block connects through the chainstate, and how long the mempool
  takes to drop the block's transactions (``mempool_block_update_ms``).

Prints one JSON object. ``--quick``: 500 transactions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FANOUT = 2_000


def run(n_txs: int, template_rounds: int) -> dict:
    from node.chain.chainstate import BlockStatus, Chainstate
    from node.chain.params import REGTEST
    from node.mempool import Mempool
    from node.mining.assembler import solve
    from node.mining.template import TemplateBuilder
    from tests.unit.mempool.mempool_tools import (
        MINER_SCRIPT,
        Env,
        FakeClock,
        regtest_chain,
        spend,
    )

    parents = n_txs - n_txs // 5
    fanouts = -(-parents // FANOUT)
    blocks, coins = regtest_chain(101 + fanouts + 1, seed=b"bench-mempool")
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chainstate.open(Path(tmp) / "node", REGTEST, script_threads=1)
        try:
            for raw in blocks:
                assert chain.process_block(raw).status is BlockStatus.ACCEPTED
            clock = FakeClock()
            pool = Mempool(chain, clock=clock, follow_chain=False)
            update_s: list[float] = []

            def timed_update(change) -> None:
                started = time.perf_counter()
                pool._on_tip_change(change)
                update_s.append(time.perf_counter() - started)

            chain.subscribe(timed_update)
            env = Env(chain, pool, clock, coins)
            outputs = []
            left = parents
            while left > 0:
                outputs += env.fan_out(min(FANOUT, left), fee=200_000)
                left -= FANOUT
            started = time.perf_counter()
            txs = []
            for i, out in enumerate(outputs[:parents]):
                tx, created = spend([out], 1, fee=500 + 7 * (i % 97))
                txs.append(tx)
                if i % 4 == 0 and len(txs) < n_txs:
                    child, _ = spend(created, 1, fee=2_000)
                    txs.append(child)
            txs = txs[:n_txs]
            sign_s = time.perf_counter() - started
            started = time.perf_counter()
            results = [pool.accept(tx) for tx in txs]
            accept_s = time.perf_counter() - started
            rejected = [r.reason for r in results if not r.accepted]
            assert not rejected, rejected[:3]
            # The same stream into a pool half as large: every later accept evicts.
            half_mb = pool.info()["usage"] / 2 / 1_000_000
            small = Mempool(chain, clock=clock, max_size_mb=half_mb, follow_chain=False)
            started = time.perf_counter()
            full_results = [small.accept(tx) for tx in txs]
            full_s = time.perf_counter() - started
            evicting = {
                "accept_full_pool_tx_per_s": round(len(txs) / full_s, 1),
                "full_pool_size": len(small),
                "full_pool_rejected": sum(not r.accepted for r in full_results),
                "full_pool_minfee_sat_per_kvb": small.min_fee_rate(),
            }
            times = []
            template = None
            for _ in range(template_rounds):
                builder = TemplateBuilder(chain, pool, clock=clock)
                started = time.perf_counter()
                template = builder.build()
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(100):
                builder.build()
            cached_s = (time.perf_counter() - started) / 100
            block = template.to_block(MINER_SCRIPT)
            assert solve(block.header)
            started = time.perf_counter()
            connected = chain.process_block(block)
            connect_s = time.perf_counter() - started
            assert connected.status is BlockStatus.ACCEPTED and connected.tip_changed
            return {
                "txs": len(txs),
                "sign_tx_per_s": round(len(txs) / sign_s, 1),
                "accept_tx_per_s": round(len(txs) / accept_s, 1),
                "accept_us_per_tx": round(accept_s / len(txs) * 1e6, 1),
                "mempool_vbytes": sum(r.vsize for r in results),
                "template_build_ms": round(statistics.median(times) * 1000, 2),
                "template_build_max_ms": round(max(times) * 1000, 2),
                "template_cached_ms": round(cached_s * 1000, 3),
                "template_txs": len(template.transactions),
                "template_weight": template.total_weight,
                "block_connect_and_mempool_update_ms": round(connect_s * 1000, 1),
                "mempool_block_update_ms": round(update_s[-1] * 1000, 1),
                "mempool_after_block": len(pool),
                **evicting,
            }
        finally:
            chain.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 transactions")
    parser.add_argument("--txs", type=int, default=None, help="mempool size (default 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="template builds to time")
    args = parser.parse_args(argv)
    n = args.txs or (500 if args.quick else 5_000)
    result = run(n, args.rounds)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
