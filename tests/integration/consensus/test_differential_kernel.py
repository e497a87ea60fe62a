"""Differential test: our validator and Bitcoin Core's engine must agree on every block.

Three sources of blocks: Bitcoin Core's 206-block regtest fixture, regtest chains
generated here with real signed P2WPKH and P2TR spends, and thousands of
mutated blocks (each breaking one consensus rule, or randomly damaged). Every
block goes to both validators from the same parent; the verdict compared is
"did it become the active tip".
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mining.workload import RegtestWorkload
from protocols.bitcoin.block import Block
from protocols.bitcoin.errors import BitcoinProtocolError
from tests.helpers.kernel import KernelOracle
from tests.helpers.mutations import MUTATIONS

MUTATED_BLOCKS = 2000


class Pair:
    """Our chainstate and the kernel, fed the same blocks."""

    def __init__(self, datadir: Path) -> None:
        self.ours = Chainstate.open(datadir / "ours", REGTEST, script_threads=2)
        self.kernel = KernelOracle("regtest")

    def submit(self, raw: bytes) -> tuple[bool, bool, str | None]:
        try:
            block_hash = Block.from_bytes(raw).hash
        except BitcoinProtocolError:
            block_hash = raw[:80]  # undecodable: neither side can make it the tip
        result = self.ours.process_block(raw)
        ours_ok = result.status == BlockStatus.ACCEPTED and self.ours.tip.hash == block_hash
        theirs_ok = self.kernel.submit(raw, block_hash)
        return ours_ok, theirs_ok, result.reason

    def close(self) -> None:
        self.ours.close()
        self.kernel.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    yield p
    p.close()


def test_core_fixture_chain_agrees(pair: Pair, core_vectors: Path) -> None:
    lines = (core_vectors / "regtest_blocks_1_206.txt").read_text().split()
    assert len(lines) == 206
    for height, line in enumerate(lines, start=1):
        ours, theirs, reason = pair.submit(bytes.fromhex(line))
        assert (ours, theirs) == (True, True), f"height {height}: ours={ours} ({reason})"
    assert pair.ours.tip.height == pair.kernel.height == 206
    assert pair.ours.tip.hash == pair.kernel.tip


def test_generated_chain_with_signed_spends_agrees(pair: Pair) -> None:
    w = RegtestWorkload(b"differential-generated")
    spends = Counter()
    for height in range(1, 181):
        if height == 102:
            block = w.next_block(target_inputs=2, inputs_per_tx=1, outputs_per_tx=60)
        else:
            block = w.next_block(target_inputs=random.Random(height).randrange(0, 24))
        for tx in block.txs[1:]:
            for txin in tx.inputs:
                spends["p2tr" if len(txin.witness) == 1 else "p2wpkh"] += 1
        ours, theirs, reason = pair.submit(block.serialize())
        assert (ours, theirs) == (True, True), f"height {height}: {reason}"
    assert spends["p2tr"] > 100 and spends["p2wpkh"] > 100, spends
    assert pair.ours.tip.hash == pair.kernel.tip


@pytest.fixture(scope="module")
def mutation_bed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Pair, RegtestWorkload, Counter]]:
    """A chain past coinbase maturity with a pool of spendable coins, in both validators."""
    pair = Pair(tmp_path_factory.mktemp("mutations"))
    w = RegtestWorkload(b"differential-mutations")
    for height in range(1, 111):
        if height == 101:
            block = w.next_block(target_inputs=1, inputs_per_tx=1, outputs_per_tx=400)
        else:
            block = w.next_block(target_inputs=4 if height > 101 else 0)
        assert pair.submit(block.serialize())[:2] == (True, True)
    verdicts: Counter = Counter()
    yield pair, w, verdicts
    pair.close()
    # Every mutation kind was exercised and rejected by both at least once.
    assert {kind for kind, agreed in verdicts if agreed == "both-rejected"} == set(MUTATIONS)


@settings(
    max_examples=MUTATED_BLOCKS,
    phases=[Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=st.sampled_from(sorted(MUTATIONS)), seed=st.integers(0, 2**64 - 1))
def test_mutated_blocks_get_the_same_verdict(
    mutation_bed: tuple[Pair, RegtestWorkload, Counter], kind: str, seed: int
) -> None:
    pair, w, verdicts = mutation_bed
    rng = random.Random(seed)
    draft = w.next_block(target_inputs=rng.randrange(2, 8), adopt=False)
    mutated = MUTATIONS[kind](w, draft, rng)
    raw = mutated if isinstance(mutated, bytes) else mutated.serialize()
    ours, theirs, reason = pair.submit(raw)
    assert ours == theirs, f"{kind}: ours={ours} ({reason}) kernel={theirs}"
    verdicts[(kind, "both-accepted" if ours else "both-rejected")] += 1
    if ours:
        pytest.fail(f"{kind} produced a valid block; the mutation did not break a rule")
    # Every few blocks the chain moves on, so mutations meet different heights and coins.
    if rng.random() < 0.1:
        block = w.next_block(target_inputs=rng.randrange(0, 6))
        assert pair.submit(block.serialize())[:2] == (True, True)
