"""Template-provider fixtures: a regtest chainstate with mature coinbases and a mempool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from tests.unit.mempool.mempool_tools import Env, FakeClock, regtest_chain

CHAIN_BLOCKS = 120  # coinbases of heights 1..21 are spendable


@pytest.fixture(scope="session")
def tp_chain_data() -> tuple[list[bytes], list]:
    return regtest_chain(CHAIN_BLOCKS, seed=b"template-provider")


@pytest.fixture
def tp_env(tmp_path: Path, tp_chain_data) -> Iterator[Env]:
    blocks, coins = tp_chain_data
    chain = Chainstate.open(tmp_path / "node", REGTEST, script_threads=1)
    try:
        for raw in blocks:
            assert chain.process_block(raw).status is BlockStatus.ACCEPTED
        clock = FakeClock()
        clock.now = max(clock.now, chain.tip.time + 1)
        yield Env(chain, Mempool(chain, clock=clock), clock, list(coins))
    finally:
        chain.close()
