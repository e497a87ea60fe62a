"""SV2 template provider latency over real TCP + Noise, with a full mempool.

A regtest chainstate whose mempool holds ``--txs`` signed spends serves one Template
Distribution client (our sans-IO initiator). Measured at the client:

- ``tip_to_prev_hash_ms``: a block from elsewhere is connected (coinbase-only, so the
  mempool stays full) -> the client has the new NewTemplate + SetNewPrevHash (includes the
  template rebuild over the whole mempool);
- ``fee_update_ms``: a high-fee transaction is accepted -> the non-future NewTemplate
  arrives (fee interval 0);
- ``request_transactions_ms``: RequestTransactionData round trip for the full template;
- ``solution_to_next_work_ms``: SubmitSolution of the full template -> the node validated
  and connected the block and the next work arrived;
- ``empty_first_tip_to_prev_hash_ms`` / ``empty_first_tip_to_full_template_ms``: with
  ``empty_first``, a new tip -> the empty future template + SetNewPrevHash, and -> the full
  template that follows.

Prints one JSON object. ``--quick``: 200 transactions, 5 rounds.
"""

from __future__ import annotations

import argparse
import asyncio
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


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def _scenario(env, datadir: Path, rounds: int) -> dict:
    from node.mining.template_provider import TemplateProvider, TemplateProviderConfig
    from node.mining.tp_keys import load_or_create_keys
    from protocols.sv2.messages import (
        NewTemplate,
        RequestTransactionData,
        RequestTransactionDataSuccess,
    )
    from tests.unit.mempool.mempool_tools import mine, spend
    from tests.unit.template_provider.tp_tools import (
        TdClient,
        client_coinbase,
        solve_template,
    )

    keys = load_or_create_keys(datadir)
    # Empty-first first: its rounds mine coinbase-only blocks, so the mempool stays full.
    tp = TemplateProvider(env.chain, env.pool, keys, TemplateProviderConfig(empty_first=True))
    await tp.start()
    try:
        client = await TdClient.connect(tp.port, keys.authority_public)
        await client.work(60)
        empty_s, full_s = [], []
        for i in range(rounds):
            mine(env.chain, extra=b"empty-first" + i.to_bytes(4, "little"))
            started = time.perf_counter()
            empty, _ = await client.work(60)
            empty_s.append(time.perf_counter() - started)
            full = await client.expect(NewTemplate, 60)
            full_s.append(time.perf_counter() - started)
            assert empty.merkle_path == () and full.merkle_path
        await client.close()
    finally:
        await tp.stop()

    config = TemplateProviderConfig(fee_interval=0.0, fee_delta=1)
    tp = TemplateProvider(env.chain, env.pool, keys, config)
    await tp.start()
    try:
        client = await TdClient.connect(tp.port, keys.authority_public)
        tpl, prev = await client.work(60)
        tip_s, fee_s, req_s = [], [], []
        for i in range(rounds):
            mine(env.chain, extra=b"bench" + i.to_bytes(4, "little"))
            started = time.perf_counter()
            tpl, prev = await client.work(60)
            tip_s.append(time.perf_counter() - started)

            tx, _ = spend(env.mature(1), 1, fee=50_000 + i)
            started = time.perf_counter()
            assert env.pool.accept(tx).accepted
            tpl = await client.expect(NewTemplate, 60)
            fee_s.append(time.perf_counter() - started)

            started = time.perf_counter()
            client.send(RequestTransactionData(tpl.template_id))
            data = await client.expect(RequestTransactionDataSuccess, 60)
            req_s.append(time.perf_counter() - started)
        solution = solve_template(tpl, prev, client_coinbase(tpl))
        started = time.perf_counter()
        client.send(solution)
        await client.work(120)
        solve_s = time.perf_counter() - started
        assert env.chain.get_block(env.chain.tip.hash).header.nonce == solution.header_nonce
        await client.close()
        return {
            "template_txs": len(data.transaction_list),
            "tip_to_prev_hash_ms": _ms(statistics.median(tip_s)),
            "tip_to_prev_hash_max_ms": _ms(max(tip_s)),
            "fee_update_ms": _ms(statistics.median(fee_s)),
            "request_transactions_ms": _ms(statistics.median(req_s)),
            "solution_to_next_work_ms": _ms(solve_s),
            "empty_first_tip_to_prev_hash_ms": _ms(statistics.median(empty_s)),
            "empty_first_tip_to_full_template_ms": _ms(statistics.median(full_s)),
        }
    finally:
        await tp.stop()


def run(n_txs: int, rounds: int) -> dict:
    from node.chain.chainstate import BlockStatus, Chainstate
    from node.chain.params import REGTEST
    from node.mempool import Mempool
    from tests.unit.mempool.mempool_tools import Env, FakeClock, regtest_chain, spend

    fanouts = -(-n_txs // FANOUT)
    blocks, coins = regtest_chain(101 + fanouts + 2 * rounds + 1, seed=b"bench-tp")
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chainstate.open(Path(tmp) / "node", REGTEST, script_threads=1)
        try:
            for raw in blocks:
                assert chain.process_block(raw).status is BlockStatus.ACCEPTED
            clock = FakeClock()
            env = Env(chain, Mempool(chain, clock=clock), clock, coins)
            outputs = []
            left = n_txs
            while left > 0:
                outputs += env.fan_out(min(FANOUT, left), fee=200_000)
                left -= FANOUT
            for i, out in enumerate(outputs[:n_txs]):
                tx, _ = spend([out], 1, fee=500 + 7 * (i % 97))
                assert env.pool.accept(tx).accepted
            result = asyncio.run(_scenario(env, Path(tmp) / "tp", rounds))
            return {"mempool_txs": n_txs, "rounds": rounds, **result}
        finally:
            chain.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 transactions, 5 rounds")
    parser.add_argument("--txs", type=int, default=None, help="mempool size (default 3000)")
    parser.add_argument("--rounds", type=int, default=None, help="tip changes to time")
    args = parser.parse_args(argv)
    n = args.txs or (200 if args.quick else 3_000)
    rounds = args.rounds or (5 if args.quick else 10)
    result = run(n, rounds)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
