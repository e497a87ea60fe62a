"""Block templates from the mempool (Bitcoin Core's BlockAssembler / getblocktemplate).

API (stable; getblocktemplate, generateblock and the SV2 template provider use it):

- ``TemplateBuilder(chainstate, mempool=None, *, clock=time.time, block_max_weight=4_000_000,
  reserved_weight=8_000, reserved_sigops=400, block_min_feerate=None, version=0x20000000)``;
  ``build() -> BlockTemplate``. Cached by (tip, mempool sequence, nBits): a repeat call with
  nothing changed only refreshes ``curtime``. ``block_min_feerate`` (sat/kvB) defaults to
  the mempool's min relay fee rate.
- ``BlockTemplate``: ``version, previousblockhash, height, bits, target, curtime, mintime,
  coinbasevalue`` (subsidy + fees), ``transactions`` (``TemplateTx``: tx, txid, wtxid, fee,
  sigops (cost), weight, depends = 1-based template indexes of in-template parents),
  ``default_witness_commitment`` (the coinbase output script), ``rules``, ``total_fees``,
  ``mempool_sequence``; ``to_block(coinbase_script_pubkey, extranonce=b"", *, time=None)``
  assembles the full (unsolved) block; ``to_gbt()`` is getblocktemplate's JSON object.

Selection is Core's ancestor-feerate package selection: repeatedly take the transaction
whose not-yet-included ancestor package has the highest fee rate, add the package
(parents first), and lower the package statistics of its descendants. A package that
does not fit the weight (4 M minus the coinbase reserve) or sigop budget (80,000 cost
minus the reserve) is skipped; selection stops below the minimum fee rate or after 1,000
consecutive misses once the block is nearly full.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.chain.chainstate import Chainstate
from node.chain.headers import median_time_past
from node.chain.params import block_subsidy
from node.mempool.policy import fee_at
from node.mining.assembler import (
    assemble_block,
    create_coinbase,
    witness_commitment_script,
)
from protocols.bitcoin.block import Block
from protocols.bitcoin.pow import bits_to_target
from protocols.bitcoin.tx import Tx

MAX_BLOCK_WEIGHT = 4_000_000
MAX_BLOCK_SIGOPS_COST = 80_000
MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
DEFAULT_RESERVED_WEIGHT = 8_000
DEFAULT_RESERVED_SIGOPS = 400
DEFAULT_VERSION = 0x20000000
MAX_CONSECUTIVE_FAILURES = 1_000


def _hex(h: bytes) -> str:
    return h[::-1].hex()


@dataclass(frozen=True, slots=True)
class TemplateTx:
    tx: Tx
    txid: bytes
    wtxid: bytes
    fee: int
    sigops: int  # sigop cost
    weight: int
    depends: tuple[int, ...]  # 1-based indexes of in-template parents, one per input

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.tx.serialize().hex(),
            "txid": _hex(self.txid),
            "hash": _hex(self.wtxid),
            "depends": list(self.depends),
            "fee": self.fee,
            "sigops": self.sigops,
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class BlockTemplate:
    version: int
    previousblockhash: bytes
    height: int
    bits: int
    target: int
    curtime: int
    mintime: int
    coinbasevalue: int
    transactions: tuple[TemplateTx, ...]
    default_witness_commitment: bytes | None
    rules: tuple[str, ...]
    mempool_sequence: int
    signet_challenge: bytes | None = None

    @property
    def total_fees(self) -> int:
        return sum(t.fee for t in self.transactions)

    @property
    def total_weight(self) -> int:
        return sum(t.weight for t in self.transactions)

    @property
    def total_sigops(self) -> int:
        return sum(t.sigops for t in self.transactions)

    @property
    def longpollid(self) -> str:
        return f"{_hex(self.previousblockhash)}{self.mempool_sequence}"

    def to_block(
        self, coinbase_script_pubkey: bytes, extranonce: bytes = b"", *, time: int | None = None
    ) -> Block:
        """The full block (coinbase paying ``coinbasevalue``, commitment, merkle root); unsolved."""
        txs = [t.tx for t in self.transactions]
        coinbase = create_coinbase(
            self.height,
            self.coinbasevalue,
            coinbase_script_pubkey,
            extra=extranonce,
            txs=txs,
            with_commitment=self.default_witness_commitment is not None,
        )
        return assemble_block(
            self.previousblockhash,
            self.curtime if time is None else time,
            self.bits,
            [coinbase, *txs],
            self.version,
        )

    def to_gbt(self) -> dict[str, Any]:
        """getblocktemplate's result object (Core's field names and formats)."""
        out: dict[str, Any] = {
            "capabilities": ["proposal"],
            "version": self.version,
            "rules": list(self.rules),
            "vbavailable": {},
            "vbrequired": 0,
            "previousblockhash": _hex(self.previousblockhash),
            "transactions": [t.to_dict() for t in self.transactions],
            "coinbaseaux": {},
            "coinbasevalue": self.coinbasevalue,
            "longpollid": self.longpollid,
            "target": f"{self.target:064x}",
            "mintime": self.mintime,
            "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff",
            "sigoplimit": MAX_BLOCK_SIGOPS_COST,
            "sizelimit": MAX_BLOCK_SERIALIZED_SIZE,
            "weightlimit": MAX_BLOCK_WEIGHT,
            "curtime": self.curtime,
            "bits": f"{self.bits:08x}",
            "height": self.height,
        }
        if self.signet_challenge is not None:
            out["signet_challenge"] = self.signet_challenge.hex()
        if self.default_witness_commitment is not None:
            out["default_witness_commitment"] = self.default_witness_commitment.hex()
        return out


class TemplateBuilder:
    """Builds (and caches) the template for the chainstate's tip from the mempool."""

    def __init__(
        self,
        chainstate: Chainstate,
        mempool: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        block_max_weight: int = MAX_BLOCK_WEIGHT,
        reserved_weight: int = DEFAULT_RESERVED_WEIGHT,
        reserved_sigops: int = DEFAULT_RESERVED_SIGOPS,
        block_min_feerate: int | None = None,
        version: int = DEFAULT_VERSION,
    ) -> None:
        self.chain = chainstate
        self.mempool = mempool
        self._clock = clock
        self.block_max_weight = min(block_max_weight, MAX_BLOCK_WEIGHT)
        self.reserved_weight = reserved_weight
        self.reserved_sigops = reserved_sigops
        self.block_min_feerate = block_min_feerate
        self.version = version
        self._cache: tuple[tuple[bytes, int, int], BlockTemplate] | None = None

    def build(self) -> BlockTemplate:
        mempool = self.mempool
        lock = (
            mempool.locked()
            if mempool is not None
            else (getattr(self.chain, "lock", None) or self.chain._lock)
        )
        with lock:
            chain = self.chain
            tip = chain.tip
            entry = chain.entry(tip.hash)
            mintime = median_time_past(entry) + 1
            curtime = max(int(self._clock()), mintime)
            bits = chain.tree.next_work_required(entry, curtime)
            sequence = mempool.sequence if mempool is not None else 0
            key = (tip.hash, sequence, bits)
            if self._cache is not None and self._cache[0] == key:
                return dataclasses.replace(self._cache[1], curtime=curtime)
            selected = self._select() if mempool is not None else []
            template = self._make(tip.hash, tip.height + 1, bits, curtime, mintime, selected)
            template = dataclasses.replace(template, mempool_sequence=sequence)
            self._cache = (key, template)
            return template

    def _make(
        self,
        prev: bytes,
        height: int,
        bits: int,
        curtime: int,
        mintime: int,
        selected: list[Any],
    ) -> BlockTemplate:
        params = self.chain.params
        index: dict[bytes, int] = {}
        txs: list[TemplateTx] = []
        for n, e in enumerate(selected, start=1):
            depends = tuple(
                index[txin.prev_txid] for txin in e.tx.inputs if txin.prev_txid in index
            )
            txs.append(TemplateTx(e.tx, e.txid, e.wtxid, e.fee, e.sigop_cost, e.weight, depends))
            index[e.txid] = n
        fees = sum(t.fee for t in txs)
        segwit = height >= params.segwit_height
        commitment = witness_commitment_script([t.tx for t in txs]) if segwit else None
        rules = ["csv", "!segwit", "taproot"]
        if params.is_signet:
            rules.append("!signet")
        return BlockTemplate(
            version=self.version,
            previousblockhash=prev,
            height=height,
            bits=bits,
            target=bits_to_target(bits).target,
            curtime=curtime,
            mintime=mintime,
            coinbasevalue=block_subsidy(height, params) + fees,
            transactions=tuple(txs),
            default_witness_commitment=commitment,
            rules=tuple(rules),
            mempool_sequence=0,
            signet_challenge=params.signet_challenge,
        )

    def _select(self) -> list[Any]:
        """Core's addPackageTxs over the mempool entries (called with the mempool locked)."""
        mempool = self.mempool
        entries = {e.txid: e for e in mempool.entries()}
        min_rate = (
            self.block_min_feerate
            if self.block_min_feerate is not None
            else mempool.min_relay_feerate
        )
        # Ancestor-package statistics not yet in the block: [fees, vsize, sigops, version].
        state: dict[bytes, list[int]] = {
            t: [e.anc_fees, e.anc_size, e.anc_sigops, 0] for t, e in entries.items()
        }
        heap = [(-s[0] / s[1], t, 0) for t, s in state.items()]
        heapq.heapify(heap)
        included: set[bytes] = set()
        failed: set[bytes] = set()
        block: list[Any] = []
        weight = self.reserved_weight
        sigops = self.reserved_sigops
        max_weight = self.block_max_weight
        misses = 0
        while heap:
            _, txid, version = heapq.heappop(heap)
            st = state[txid]
            if txid in included or txid in failed or version != st[3]:
                continue
            fees, size, pkg_sigops = st[0], st[1], st[2]
            if fees < fee_at(min_rate, size):
                break  # everything left pays less than the block minimum
            if weight + 4 * size >= max_weight or sigops + pkg_sigops >= MAX_BLOCK_SIGOPS_COST:
                failed.add(txid)
                misses += 1
                if misses > MAX_CONSECUTIVE_FAILURES and weight > max_weight - 4000:
                    break
                continue
            misses = 0
            package = _ancestors(entries, txid) - included
            package.add(txid)
            for t in sorted(package, key=lambda x: entries[x].anc_count):
                e = entries[t]
                block.append(e)
                included.add(t)
                weight += e.weight
                sigops += e.sigop_cost
            touched: set[bytes] = set()
            for t in package:
                e = entries[t]
                if not e.children:
                    continue
                for d in _descendants(entries, t) - included:
                    ds = state[d]
                    ds[0] -= e.modified_fee
                    ds[1] -= e.vsize
                    ds[2] -= e.sigop_cost
                    ds[3] += 1
                    touched.add(d)
            for d in touched:
                ds = state[d]
                heapq.heappush(heap, (-ds[0] / ds[1], d, ds[3]))
        return block


def _ancestors(entries: dict[bytes, Any], txid: bytes) -> set[bytes]:
    seen: set[bytes] = set()
    todo = list(entries[txid].parents)
    while todo:
        t = todo.pop()
        if t in seen or t not in entries:
            continue
        seen.add(t)
        todo.extend(entries[t].parents)
    return seen


def _descendants(entries: dict[bytes, Any], txid: bytes) -> set[bytes]:
    seen: set[bytes] = set()
    todo = list(entries[txid].children)
    while todo:
        t = todo.pop()
        if t in seen or t not in entries:
            continue
        seen.add(t)
        todo.extend(entries[t].children)
    return seen
