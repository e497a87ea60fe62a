"""Mempool + chainstate + templates across a restart, with Bitcoin Core's engine as the judge.

A node fills its mempool with signed spends (independent, chained, replaced), saves it,
shuts down, reopens the same datadir and loads the file; then it mines the mempool
empty through templates. Every template block must be accepted by our chainstate AND
become the tip in py-bitcoinkernel (Core's validation) fed the same chain.
"""

from __future__ import annotations

from pathlib import Path

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from node.mining.assembler import solve
from node.mining.template import TemplateBuilder
from tests.helpers.kernel import KernelOracle
from tests.unit.mempool.mempool_tools import (
    MINER_SCRIPT,
    Env,
    FakeClock,
    regtest_chain,
    spend,
)


def test_fill_restart_load_and_mine_empty(tmp_path: Path) -> None:
    blocks, coins = regtest_chain(160, seed=b"mempool-integration")
    kernel = KernelOracle("regtest", tmp_path / "kernel")
    datadir = tmp_path / "node"
    chain = Chainstate.open(datadir, REGTEST, script_threads=2)
    try:
        for raw in blocks:
            assert chain.process_block(raw).status is BlockStatus.ACCEPTED
        clock = FakeClock()
        env = Env(chain, Mempool(chain, clock=clock), clock, list(coins))
        # 30 independent parents with 2 outputs, children and grandchildren, some RBF.
        accepted = 0
        for i in range(30):
            parent, outs = spend(env.mature(1), 2, fee=1_000 + 100 * i)
            assert env.pool.accept(parent).accepted
            child, grand_outs = spend(outs[:1], 2, fee=3_000)
            assert env.pool.accept(child).accepted
            grand, _ = spend(grand_outs, 1, fee=500)
            assert env.pool.accept(grand).accepted
            accepted += 3
            if i % 5 == 0:
                better, _ = spend(outs[1:], 1, fee=2_000)
                first, _ = spend(outs[1:], 1, fee=600)
                assert env.pool.accept(first).accepted
                result = env.pool.accept(better)
                assert result.accepted and result.replaced == (first.txid,)
                accepted += 1
        assert len(env.pool) == accepted
        expected = env.pool.txids()
        path = datadir / "mempool.dat"
        env.pool.save(str(path))
        env.pool.close()
    finally:
        chain.close()

    chain = Chainstate.open(datadir, REGTEST, script_threads=2)
    try:
        assert chain.height == 160
        pool = Mempool(chain, clock=clock)
        loaded = pool.load(str(datadir / "mempool.dat"))
        assert loaded.accepted == len(expected) and loaded.failed == 0
        assert pool.txids() == expected
        for raw in blocks:
            kernel.submit(raw, chain.block_hash_at(blocks.index(raw) + 1))
        assert kernel.tip == chain.tip.hash
        builder = TemplateBuilder(chain, pool, clock=clock, block_max_weight=30_000)
        rounds = 0
        while len(pool):
            before = len(pool)
            tpl = builder.build()
            assert tpl.transactions, "template empty while the mempool is not"
            block = tpl.to_block(MINER_SCRIPT, rounds.to_bytes(2, "little"))
            assert solve(block.header)
            assert block.weight <= 30_000
            assert kernel.submit(block.serialize(), block.hash), kernel.last_state
            result = chain.process_block(block)
            assert result.status is BlockStatus.ACCEPTED and result.tip_changed
            assert len(pool) == before - len(tpl.transactions)
            rounds += 1
        assert rounds >= 2
        assert kernel.tip == chain.tip.hash
        pool.close()
    finally:
        chain.close()
        kernel.close()
