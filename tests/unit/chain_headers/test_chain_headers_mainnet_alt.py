"""Core's alternative mainnet chain (mining_mainnet): real PoW through the 2016 retarget."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.chain import errors as E
from node.chain import params as P
from node.chain.errors import ConsensusError
from node.chain.headers import HeaderTree, check_header_context, median_time_past
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.pow import block_work
from tests.helpers import mainnet_alt

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def alt_headers(core_vectors: Path) -> list[bytes]:
    return mainnet_alt.headers(core_vectors, P.MAINNET.genesis_hash)


@pytest.fixture(scope="module")
def alt_tree(alt_headers: list[bytes]) -> HeaderTree:
    tree = HeaderTree(P.MAINNET)
    for raw in alt_headers:
        tree.accept(raw, NOW)
    return tree


def test_chain_headers_mainnet_alt_validates_through_retarget(alt_tree: HeaderTree) -> None:
    tip = alt_tree.best
    assert tip.height == 2016
    assert alt_tree.best_chain_at(2015).bits == mainnet_alt.DIFF_1_BITS
    assert tip.bits == mainnet_alt.DIFF_4_BITS == 0x1C3FFFC0
    parent = alt_tree.best_chain_at(2015)
    assert alt_tree.next_work_required(parent, tip.time) == 0x1C3FFFC0
    assert tip.chainwork == 2016 * block_work(0x1D00FFFF) + block_work(0x1C3FFFC0)
    assert tip.chainwork == 0x7E407E407E4


def test_chain_headers_mainnet_alt_blocks_are_consistent(core_vectors: Path) -> None:
    blocks = list(mainnet_alt.blocks(core_vectors, P.MAINNET.genesis_hash, 20))
    for height, block in enumerate(blocks, 1):
        root, mutated = merkle_root([tx.txid for tx in block.txs])
        assert root == block.header.merkle_root and not mutated
        if height <= 16:  # OP_n OP_0: BIP34 height plus padding to the 2-byte minimum
            assert block.txs[0].inputs[0].script_sig == bytes((0x50 + height, 0))
    assert blocks[16].txs[0].inputs[0].script_sig == b"\x01\x11"  # height 17: CScriptNum push


@pytest.mark.parametrize("height", [1, 1000, 2015, 2016])
@pytest.mark.parametrize("field", ["time", "nonce"])
def test_chain_headers_mainnet_alt_tamper_rejected_at_height(
    alt_headers: list[bytes], height: int, field: str
) -> None:
    headers = list(alt_headers)
    raw = bytearray(headers[height - 1])
    pos = 68 if field == "time" else 76
    raw[pos : pos + 4] = (int.from_bytes(raw[pos : pos + 4], "little") + 1).to_bytes(4, "little")
    headers[height - 1] = bytes(raw)
    tree = HeaderTree(P.MAINNET)
    with pytest.raises(ConsensusError) as info:
        for h in headers:
            tree.accept(h, NOW)
    err = info.value
    assert (err.reason, err.height, err.block_hash) == (E.HIGH_HASH, height, sha256d(bytes(raw)))
    assert tree.best.height == height - 1


def test_chain_headers_mainnet_alt_context_rules_at_retarget(alt_tree: HeaderTree) -> None:
    parent = alt_tree.best_chain_at(2015)
    tip = alt_tree.best
    ok = (tip.version, tip.time, tip.bits, parent, P.MAINNET, NOW)
    assert check_header_context(*ok) is None
    # difficulty-1 bits where the retarget demands difficulty 4
    assert check_header_context(tip.version, tip.time, 0x1D00FFFF, parent, P.MAINNET, NOW) == (
        E.BAD_DIFFBITS
    )
    mtp = median_time_past(parent)
    assert check_header_context(tip.version, mtp, tip.bits, parent, P.MAINNET, NOW) == (
        E.TIME_TOO_OLD
    )
    assert check_header_context(tip.version, mtp + 1, tip.bits, parent, P.MAINNET, NOW) is None
    assert check_header_context(
        tip.version, tip.time, tip.bits, parent, P.MAINNET, tip.time - 7201
    ) == (E.TIME_TOO_NEW)
    # version 1 is fine below BIP34's height on mainnet
    assert check_header_context(1, tip.time, tip.bits, parent, P.MAINNET, NOW) is None
