"""Mempool fixtures: a regtest chainstate with mature coinbases paying our keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from tests.unit.mempool.mempool_tools import Env, FakeClock, regtest_chain

CHAIN_BLOCKS = 140  # coinbases of heights 1..41 are spendable in the next block


@pytest.fixture(scope="session")
def chain_data() -> tuple[list[bytes], list]:
    return regtest_chain(CHAIN_BLOCKS)


@pytest.fixture
def make_env(tmp_path: Path, chain_data) -> Iterator:
    """Factory: make_env(**mempool_kwargs) -> Env with a fresh chainstate and mempool."""
    opened: list[Chainstate] = []

    def factory(name: str = "node", **kwargs) -> Env:
        blocks, coins = chain_data
        chain = Chainstate.open(tmp_path / name, REGTEST, script_threads=1)
        opened.append(chain)
        for raw in blocks:
            assert chain.process_block(raw).status is BlockStatus.ACCEPTED
        clock = FakeClock()
        kwargs.setdefault("clock", clock)
        pool = Mempool(chain, **kwargs)
        return Env(chain, pool, kwargs["clock"], list(coins))

    yield factory
    for chain in opened:
        chain.close()


@pytest.fixture
def env(make_env) -> Env:
    return make_env()
