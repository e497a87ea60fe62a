"""Read-only summaries of a block's commitments (merkle root, BIP141 witness commitment).

Used by ``blvm chain decode-block``; validation raises the matching reject reasons itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.bitcoin.block import Block
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.merkle import merkle_root

WITNESS_COMMITMENT_PREFIX = bytes.fromhex("6a24aa21a9ed")
_MIN_COMMITMENT_SCRIPT = 38


class MerkleStatus(enum.StrEnum):
    OK = "ok"
    MISMATCH = "mismatch"  # header root differs from the transactions' root
    MUTATED = "mutated"  # root matches but the tree repeats a pair (CVE-2012-2459)


class WitnessStatus(enum.StrEnum):
    ABSENT = "absent"  # witness data present but no commitment (unexpected-witness)
    OK = "ok"
    MISMATCH = "mismatch"  # wrong commitment or wrong coinbase witness nonce
    NOT_REQUIRED = "not-required"  # no witness data and no commitment


def witness_commitment_index(block: Block) -> int | None:
    """Index of the coinbase output holding the commitment (the last matching one), if any."""
    if not block.txs:
        return None
    found = None
    for i, out in enumerate(block.txs[0].outputs):
        spk = out.script_pubkey
        if len(spk) >= _MIN_COMMITMENT_SCRIPT and spk[:6] == WITNESS_COMMITMENT_PREFIX:
            found = i
    return found


def merkle_status(block: Block) -> MerkleStatus:
    root, mutated = merkle_root([tx.txid for tx in block.txs])
    if root != block.header.merkle_root:
        return MerkleStatus.MISMATCH
    return MerkleStatus.MUTATED if mutated else MerkleStatus.OK


def witness_status(block: Block) -> WitnessStatus:
    index = witness_commitment_index(block)
    if index is None:
        if any(tx.has_witness() for tx in block.txs):
            return WitnessStatus.ABSENT
        return WitnessStatus.NOT_REQUIRED
    coinbase = block.txs[0]
    stack = coinbase.inputs[0].witness if coinbase.inputs else ()
    if len(stack) != 1 or len(stack[0]) != 32:
        return WitnessStatus.MISMATCH
    leaves = [b"\x00" * 32] + [tx.wtxid for tx in block.txs[1:]]
    root, _ = merkle_root(leaves)
    expected = sha256d(root + stack[0])
    spk = coinbase.outputs[index].script_pubkey
    return WitnessStatus.OK if spk[6:38] == expected else WitnessStatus.MISMATCH


@dataclass(frozen=True, slots=True)
class BlockSummary:
    hash: str
    size: int
    weight: int
    tx_count: int
    merkle: MerkleStatus
    witness_commitment: WitnessStatus

    def to_dict(self) -> dict[str, object]:
        return {
            "hash": self.hash,
            "size": self.size,
            "weight": self.weight,
            "tx_count": self.tx_count,
            "merkle": str(self.merkle),
            "witness_commitment": str(self.witness_commitment),
        }


def summarize(block: Block) -> BlockSummary:
    return BlockSummary(
        block.hash_hex,
        block.size,
        block.weight,
        len(block.txs),
        merkle_status(block),
        witness_status(block),
    )
