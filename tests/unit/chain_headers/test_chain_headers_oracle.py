"""Differential test: our header acceptance against Bitcoin Core's (py-bitcoinkernel)."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import pbk
import pytest

from node.chain import params as P
from node.chain.errors import ConsensusError
from node.chain.headers import HeaderTree, median_time_past
from protocols.bitcoin.hashes import sha256d
from tests.helpers import mainnet_alt
from tests.helpers.headerchain import mine


class KernelHeaders:
    """Core's AcceptBlockHeader via a kernel chainstate manager in a temporary datadir."""

    def __init__(self, chain: pbk.ChainType) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="blvm-hdr-")
        self.chainman = pbk.load_chainman(Path(self._tmp.name), chain)

    def accept(self, raw: bytes) -> bool:
        try:
            state = self.chainman.process_block_header(pbk.BlockHeader(raw))
        except pbk.ProcessBlockHeaderException:
            return False
        return state.validation_mode == pbk.ValidationMode.VALID

    def close(self) -> None:
        del self.chainman
        self._tmp.cleanup()


def _ours(tree: HeaderTree, raw: bytes, now: int) -> bool:
    try:
        tree.accept(raw, now)
    except ConsensusError:
        return False
    return True


def test_chain_headers_oracle_mainnet_alt_and_tampering(core_vectors: Path) -> None:
    headers = mainnet_alt.headers(core_vectors, P.MAINNET.genesis_hash)
    kernel = KernelHeaders(pbk.ChainType.MAINNET)
    tree = HeaderTree(P.MAINNET)
    now = int(time.time())
    try:
        for i, raw in enumerate(headers):
            if i % 97 == 5:  # a tampered sibling first: both must refuse it
                bad = bytearray(raw)
                bad[68] ^= 0x01
                assert not _ours(tree, bytes(bad), now) and not kernel.accept(bytes(bad))
            assert _ours(tree, raw, now) and kernel.accept(raw)
        assert bytes(kernel.chainman.best_entry.block_hash) == tree.best.hash
    finally:
        kernel.close()


FAULTS = ("none", "none", "none", "bits", "time_old", "time_new", "version", "orphan")


@pytest.mark.parametrize("seed", [1, 2])
def test_chain_headers_oracle_regtest_random_faults(seed: int) -> None:
    rng = random.Random(seed)
    kernel = KernelHeaders(pbk.ChainType.REGTEST)
    tree = HeaderTree(P.REGTEST)
    now = int(time.time())
    accepted = [tree.genesis]
    verdicts = {True: 0, False: 0}
    try:
        for i in range(120):
            parent = rng.choice(accepted[-8:]) if rng.random() < 0.8 else rng.choice(accepted)
            fault = rng.choice(FAULTS)
            t = max(parent.time + rng.randrange(1, 1200), median_time_past(parent) + 1)
            bits, version, prev = 0x207FFFFF, 0x20000000, parent.hash
            if fault == "bits":
                bits = 0x1F7FFFFF
            elif fault == "time_old":
                t = median_time_past(parent) - rng.randrange(0, 3)
            elif fault == "time_new":
                t = now + 3 * 3600
            elif fault == "version":
                version = rng.choice((1, 2, 3))
            elif fault == "orphan":
                prev = rng.randbytes(32)
            raw = mine(prev, t, bits, version=version, tag=seed * 1000 + i)
            ours, core = _ours(tree, raw, now), kernel.accept(raw)
            assert ours == core, (i, fault)
            verdicts[ours] += 1
            if ours:
                accepted.append(tree.get(sha256d(raw)))
        assert verdicts[True] > 40 and verdicts[False] > 30
        assert bytes(kernel.chainman.best_entry.block_hash) == tree.best.hash
    finally:
        kernel.close()


def test_chain_headers_oracle_mainnet_alt_full_blocks_connect(core_vectors: Path) -> None:
    """The rebuilt blocks are byte-exact: Core connects all 2016 as the active chain."""
    kernel = KernelHeaders(pbk.ChainType.MAINNET)
    try:
        last = None
        for block in mainnet_alt.blocks(core_vectors, P.MAINNET.genesis_hash):
            kernel.chainman.process_block(pbk.Block(block.serialize()))
            last = block
        chain = kernel.chainman.get_active_chain()
        assert chain.height == 2016
        assert bytes(chain.block_tree_entries[2016].block_hash) == last.hash
    finally:
        kernel.close()
