"""One mempool transaction with the package statistics Core keeps beside it.

Ancestor and descendant aggregates (count, vsize, modified fees, sigop cost) include the
entry itself, exactly as getmempoolentry reports them; the pool keeps them current on
every add, removal and prioritisation, so the template builder and eviction read them
without walking the graph.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protocols.bitcoin.tx import Tx


class RemovalReason(enum.StrEnum):
    """Why a transaction left the mempool (Core's MemPoolRemovalReason)."""

    BLOCK = "block"  # confirmed
    CONFLICT = "conflict"  # a block spent one of its inputs
    REPLACED = "replaced"  # RBF
    SIZELIMIT = "sizelimit"  # evicted by the size limit
    EXPIRY = "expiry"  # older than the expiry time
    REORG = "reorg"  # no longer valid after a reorganisation


@dataclass(slots=True, eq=False)
class MempoolEntry:
    tx: Tx
    txid: bytes
    wtxid: bytes
    fee: int  # base fee, satoshis
    vsize: int  # sigop-adjusted virtual size
    weight: int
    sigop_cost: int
    time: int  # entry time, unix seconds
    height: int  # chain height when it entered
    spends_coinbase: bool
    sequence: int  # mempool sequence number at entry (Core's entry_sequence)
    usage: int  # estimated memory use, bytes
    delta: int = 0  # prioritisetransaction fee delta
    script_flags: int = 0  # consensus flags the scripts were verified with
    parents: set[bytes] = field(default_factory=set)
    children: set[bytes] = field(default_factory=set)
    anc_count: int = 1
    anc_size: int = 0
    anc_fees: int = 0
    anc_sigops: int = 0
    desc_count: int = 1
    desc_size: int = 0
    desc_fees: int = 0
    score_version: int = 0  # bumped when the eviction score changes (lazy heap entries)

    @property
    def modified_fee(self) -> int:
        return self.fee + self.delta

    @property
    def feerate(self) -> float:
        """Modified fee per vbyte."""
        return self.modified_fee / self.vsize

    @property
    def descendant_score(self) -> float:
        """Core's eviction order key: the higher of its own and its package's fee rate."""
        return max(self.modified_fee / self.vsize, self.desc_fees / self.desc_size)

    @property
    def txid_hex(self) -> str:
        return self.txid[::-1].hex()
