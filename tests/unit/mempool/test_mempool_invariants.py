"""Random sequences of mempool operations keep the cached package statistics exact.

After every step (new tx, child, RBF, prioritise, a template block, a conflicting block,
a tiny size limit forcing evictions) each entry's parents/children, ancestor and
descendant aggregates, the spender index and the totals are recomputed from scratch
and compared with what the pool maintains incrementally.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from node.mining.assembler import solve
from node.mining.template import TemplateBuilder
from tests.unit.mempool.mempool_tools import MINER_SCRIPT, Env, FakeClock, mine, spend


def check_invariants(pool) -> None:
    entries = {e.txid: e for e in pool.entries()}
    spenders = {}
    for t, e in entries.items():
        parents = {i.prev_txid for i in e.tx.inputs if i.prev_txid in entries}
        assert e.parents == parents
        children = {c for c, ce in entries.items() if t in {i.prev_txid for i in ce.tx.inputs}}
        assert e.children == children
        for i in e.tx.inputs:
            spenders[i.prevout] = t
    for t, e in entries.items():
        anc = pool.ancestors(t) | {t}
        desc = pool.descendants(t) | {t}
        assert e.anc_count == len(anc)
        assert e.anc_size == sum(entries[a].vsize for a in anc)
        assert e.anc_fees == sum(entries[a].modified_fee for a in anc)
        assert e.anc_sigops == sum(entries[a].sigop_cost for a in anc)
        assert e.desc_count == len(desc)
        assert e.desc_size == sum(entries[d].vsize for d in desc)
        assert e.desc_fees == sum(entries[d].modified_fee for d in desc)
    # Every entry is queued for eviction under its current score (the lazy heap is exact).
    queued = {(txid, version): score for score, _, version, txid in pool._evict_heap}
    for t, e in entries.items():
        assert queued.get((t, e.score_version)) == e.descendant_score
    for op, t in spenders.items():
        assert pool.spender_of(op) == t
    info = pool.info()
    assert info["size"] == len(entries)
    assert info["bytes"] == sum(e.vsize for e in entries.values())
    assert info["usage"] == sum(e.usage for e in entries.values())
    assert info["total_fee"] == round(sum(e.fee for e in entries.values()) / 1e8, 8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_keep_stats_exact(make_env, seed):
    env = make_env(max_size_mb=0.006)  # ~6 spends: evictions happen along the way
    random_operations(env, random.Random(seed), 60)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), size=st.sampled_from([0.004, 0.006, 0.05]))
def test_fuzzed_operations_keep_stats_exact(tmp_path_factory, chain_data, rng, size):
    blocks, coins = chain_data
    chain = Chainstate.open(tmp_path_factory.mktemp("fuzz"), REGTEST, script_threads=1)
    try:
        for raw in blocks:
            chain.process_block(raw)
        clock = FakeClock()
        env = Env(chain, Mempool(chain, clock=clock, max_size_mb=size), clock, list(coins))
        random_operations(env, rng, 20)  # <= 40 coinbases: never runs out
    finally:
        chain.close()


def random_operations(env, rng, steps: int) -> None:
    coins = {}  # outpoint -> Coin we can sign for
    inputs_of = {}  # txid -> the coins it spends
    builder = TemplateBuilder(env.chain, env.pool, clock=env.clock)

    def submit(tx, spent, created):
        result = env.pool.accept(tx)
        if result.accepted:
            inputs_of[tx.txid] = spent
            coins.update({c.prevout: c for c in created})
        return result

    for step in range(steps):
        op = rng.random()
        pool_txs = env.pool.entries()
        free = [
            c
            for e in pool_txs
            for n in range(len(e.tx.outputs))
            if (c := coins.get(e.txid + n.to_bytes(4, "little")))
            and env.pool.spender_of(c.prevout) is None
        ]
        if op < 0.35 or not pool_txs:
            spent = env.mature(rng.randint(1, 2))
            tx, created = spend(spent, rng.randint(1, 3), fee=rng.randint(200, 9_000))
            submit(tx, spent, created)
        elif op < 0.6 and free:
            spent = rng.sample(free, min(len(free), rng.randint(1, 2)))
            tx, created = spend(spent, rng.randint(1, 2), fee=rng.randint(200, 9_000))
            submit(tx, spent, created)
        elif op < 0.75:
            victim = rng.choice(pool_txs)
            spent = inputs_of[victim.txid]
            extra = env.pool.get(victim.txid).desc_fees if victim.txid in env.pool else 0
            tx, created = spend(spent, 1, fee=extra + rng.randint(0, 3_000))
            submit(tx, spent, created)
        elif op < 0.85:
            env.pool.prioritise(rng.choice(pool_txs).txid, rng.randint(-2_000, 5_000))
        elif op < 0.93:
            builder.block_max_weight = rng.randint(8_000 + 600, 20_000)
            tpl = builder.build()
            block = tpl.to_block(MINER_SCRIPT, step.to_bytes(2, "little"))
            assert solve(block.header)
            assert env.chain.process_block(block).tip_changed
            assert all(t.txid not in env.pool for t in tpl.transactions)
        else:
            victim = rng.choice(pool_txs)
            confirmed = [c for c in inputs_of[victim.txid] if c.coinbase]
            if confirmed:
                rival, _ = spend(confirmed[:1], 1, fee=100)
                mine(env.chain, [rival], 100, extra=step.to_bytes(2, "little"))
                assert victim.txid not in env.pool
        check_invariants(env.pool)
    assert env.pool.info()["usage"] <= env.pool.max_bytes
