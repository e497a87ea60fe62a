"""Chainstate test fixtures: the Core regtest chain, extended with spendable OP_TRUE blocks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from protocols.bitcoin.block import Block
from tests.unit.chainstate.blocktools import build_chain, fixture_blocks, tip_of

EXTRA_BLOCKS = 110  # OP_TRUE coinbases on top of the fixture; the first ones are mature


@pytest.fixture(scope="session")
def fixture_raw(core_vectors: Path) -> list[bytes]:
    return [b.serialize() for b in fixture_blocks(core_vectors)]


@pytest.fixture(scope="session")
def extended_raw(fixture_raw: list[bytes]) -> list[bytes]:
    """Fixture blocks 1..206 then EXTRA_BLOCKS blocks (207..316) paying to OP_TRUE."""
    tip = tip_of(Block.from_bytes(fixture_raw[-1]), len(fixture_raw))
    extra = build_chain(tip, EXTRA_BLOCKS)
    return fixture_raw + [b.serialize() for b in extra]


def import_all(cs: Chainstate, blocks: list[bytes]) -> None:
    for raw in blocks:
        result = cs.process_block(raw)
        assert result.status is BlockStatus.ACCEPTED, result


@pytest.fixture
def open_cs(tmp_path: Path) -> Iterator:
    """Factory: open_cs(blocks, **open_kwargs) -> Chainstate with ``blocks`` imported."""
    opened: list[Chainstate] = []

    def factory(blocks: list[bytes] = (), name: str = "node", **kwargs) -> Chainstate:
        kwargs.setdefault("script_threads", 2)
        cs = Chainstate.open(tmp_path / name, REGTEST, **kwargs)
        opened.append(cs)
        import_all(cs, list(blocks))
        return cs

    yield factory
    for cs in opened:
        cs.close()
