"""The mempool: Bitcoin Core's acceptance rules, package bookkeeping, RBF, eviction, chain sync.

Locking follows Core's ``cs_main`` then ``mempool.cs`` order: anything that reads the
chain (accept, chain-sync callbacks, template building) takes the chainstate's lock first
and the mempool lock second; read-only queries take the mempool lock alone and never call
into the chain while holding it. So the chain thread (which calls our tip-change callback
with its lock held) and RPC threads cannot deadlock.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from node.chain import errors as CE
from node.chain.chainstate import Chainstate, TipChange
from node.chain.errors import ConsensusError
from node.chain.headers import median_time_past
from node.chain.params import MAX_MONEY
from node.chain.scriptcheck import KernelTx, ScriptCheckError, script_flags
from node.chain.txcheck import check_transaction
from node.chain.validation import (
    SEQUENCE_LOCKTIME_DISABLE_FLAG,
    SEQUENCE_LOCKTIME_GRANULARITY,
    SEQUENCE_LOCKTIME_MASK,
    SEQUENCE_LOCKTIME_TYPE_FLAG,
    is_final_tx,
)
from node.mempool import errors as R
from node.mempool import persist
from node.mempool.entry import MempoolEntry, RemovalReason
from node.mempool.errors import Rejected
from node.mempool.policy import (
    DUST_RELAY_FEERATE,
    MAX_DATACARRIER_BYTES,
    MAX_STANDARD_TX_SIGOPS_COST,
    adjusted_vsize,
    check_inputs_standard,
    check_standard_tx,
    check_witness_standard,
    fee_at,
)
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.script import get_transaction_sigop_cost
from protocols.bitcoin.tx import Tx, TxOut

log = logging.getLogger(__name__)

COIN = 100_000_000
DEFAULT_MAX_SIZE_MB = 300
DEFAULT_MIN_RELAY_FEERATE = 1_000  # sat/kvB
DEFAULT_INCREMENTAL_RELAY_FEERATE = 1_000  # sat/kvB
DEFAULT_ANCESTOR_LIMIT = 25
DEFAULT_ANCESTOR_SIZE_LIMIT_KVB = 101
DEFAULT_DESCENDANT_LIMIT = 25
DEFAULT_DESCENDANT_SIZE_LIMIT_KVB = 101
MAX_REPLACEMENT_CANDIDATES = 100
EXTRA_DESCENDANT_TX_SIZE_LIMIT = 10_000  # CPFP carve-out
DEFAULT_EXPIRY_HOURS = 336
ROLLING_FEE_HALFLIFE = 60 * 60 * 12
ENTRY_OVERHEAD = 600  # bytes per entry beyond twice its serialized size (index, sets, objects)


def _btc(sats: int | float) -> float:
    return round(sats / COIN, 8)


def _hex(h: bytes) -> str:
    return h[::-1].hex()


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Outcome of ``accept``/``test_accept``; ``reason`` is Core's reject reason when refused."""

    accepted: bool
    txid: bytes
    wtxid: bytes
    fee: int | None = None
    vsize: int | None = None
    reason: str | None = None
    message: str = ""
    replaced: tuple[bytes, ...] = ()

    @property
    def missing_inputs(self) -> bool:
        """True when refused only for unknown inputs (an orphan for P2P)."""
        return self.reason == CE.BAD_TXNS_INPUTS_MISSINGORSPENT

    def to_dict(self) -> dict[str, Any]:
        """testmempoolaccept's per-transaction object (amounts in BTC)."""
        out: dict[str, Any] = {
            "txid": _hex(self.txid),
            "wtxid": _hex(self.wtxid),
            "allowed": self.accepted,
        }
        if self.vsize is not None and self.fee is not None and self.reason is None:
            out["vsize"] = self.vsize
            out["fees"] = {
                "base": _btc(self.fee),
                "effective-feerate": _btc(self.fee * 1000 / self.vsize),
                "effective-includes": [_hex(self.wtxid)],
            }
        if self.reason is not None:
            out["reject-reason"] = self.reason
            if self.message:
                out["reject-details"] = f"{self.reason}, {self.message}"
        return out


@dataclass(frozen=True, slots=True)
class LoadResult:
    accepted: int
    failed: int
    expired: int
    already_there: int


@dataclass(slots=True)
class _Plan:
    """A transaction that passed every check, and what admitting it changes."""

    tx: Tx
    txid: bytes
    wtxid: bytes
    fee: int
    vsize: int
    weight: int
    sigop_cost: int
    height: int
    spends_coinbase: bool
    parents: set[bytes]
    ancestors: set[bytes]
    evicted: set[bytes]  # conflicts and their descendants (RBF)
    flags: int


class Mempool:
    """Unconfirmed transactions valid on the chainstate's tip, kept in sync with it."""

    def __init__(
        self,
        chainstate: Chainstate,
        *,
        max_size_mb: float = DEFAULT_MAX_SIZE_MB,
        min_relay_feerate: int = DEFAULT_MIN_RELAY_FEERATE,
        incremental_relay_feerate: int = DEFAULT_INCREMENTAL_RELAY_FEERATE,
        dust_relay_feerate: int = DUST_RELAY_FEERATE,
        ancestor_limit: int = DEFAULT_ANCESTOR_LIMIT,
        ancestor_size_limit_kvb: int = DEFAULT_ANCESTOR_SIZE_LIMIT_KVB,
        descendant_limit: int = DEFAULT_DESCENDANT_LIMIT,
        descendant_size_limit_kvb: int = DEFAULT_DESCENDANT_SIZE_LIMIT_KVB,
        expiry_hours: float = DEFAULT_EXPIRY_HOURS,
        permit_bare_multisig: bool = True,
        max_datacarrier_bytes: int = MAX_DATACARRIER_BYTES,
        clock: Callable[[], float] = time.time,
        follow_chain: bool = True,
    ) -> None:
        self.chain = chainstate
        self.max_bytes = int(max_size_mb * 1_000_000)
        self.min_relay_feerate = min_relay_feerate
        self.incremental_relay_feerate = incremental_relay_feerate
        self.dust_relay_feerate = dust_relay_feerate
        self.ancestor_limit = ancestor_limit
        self.ancestor_size_limit = ancestor_size_limit_kvb * 1000
        self.descendant_limit = descendant_limit
        self.descendant_size_limit = descendant_size_limit_kvb * 1000
        self.expiry_seconds = int(expiry_hours * 3600)
        self.permit_bare_multisig = permit_bare_multisig
        self.max_datacarrier_bytes = max_datacarrier_bytes
        self._clock = clock
        # Core's cs_main: the chainstate serialises its calls with this re-entrant lock.
        self._chain_lock = getattr(chainstate, "lock", None) or chainstate._lock
        self._lock = threading.RLock()
        self._entries: dict[bytes, MempoolEntry] = {}
        self._by_wtxid: dict[bytes, bytes] = {}
        self._spenders: dict[bytes, bytes] = {}  # outpoint -> txid spending it (mapNextTx)
        self._deltas: dict[bytes, int] = {}
        self._sequence = 0
        self._total_vsize = 0
        self._total_fee = 0
        self._usage = 0
        self._evict_heap: list[tuple[float, int, int, bytes]] = []  # lazy: see _touch
        self._oldest_time = 1 << 62  # lower bound of entry times (expiry scans only below it)
        self._rolling_min_fee = 0.0  # sat/kvB
        self._last_rolling_update = int(clock())
        self._block_since_bump = False
        self._listeners: list[Callable[[MempoolEntry], None]] = []
        self._removal_listeners: list[Callable[[bytes, RemovalReason], None]] = []
        self._pending_added: list[MempoolEntry] = []
        self._pending_removed: list[tuple[bytes, RemovalReason]] = []
        self.loaded = True
        self._unsubscribe = chainstate.subscribe(self._on_tip_change) if follow_chain else None

    def close(self) -> None:
        """Stop following the chain."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the chain lock and the mempool lock (in that order): a consistent view of both."""
        with self._chain_lock, self._lock:
            yield

    # -- queries ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._entries

    @property
    def sequence(self) -> int:
        """Bumped on every addition, removal and prioritisation (template cache key)."""
        return self._sequence

    def get(self, txid: bytes) -> MempoolEntry | None:
        with self._lock:
            return self._entries.get(txid)

    def get_by_wtxid(self, wtxid: bytes) -> MempoolEntry | None:
        with self._lock:
            txid = self._by_wtxid.get(wtxid)
            return self._entries.get(txid) if txid is not None else None

    def spender_of(self, outpoint: bytes) -> bytes | None:
        """Txid of the mempool transaction spending a 36-byte outpoint, or None."""
        with self._lock:
            return self._spenders.get(outpoint)

    def entries(self) -> list[MempoolEntry]:
        """All entries in arrival order (a parent always precedes its children)."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.sequence)

    def txids(self) -> list[bytes]:
        return [e.txid for e in self.entries()]

    def ancestors(self, txid: bytes) -> set[bytes]:
        """In-mempool ancestors (not including ``txid``)."""
        with self._lock:
            e = self._entries.get(txid)
            return self._closure(e.parents, True) if e else set()

    def descendants(self, txid: bytes) -> set[bytes]:
        """In-mempool descendants (not including ``txid``)."""
        with self._lock:
            e = self._entries.get(txid)
            return self._closure(e.children, False) if e else set()

    def min_fee_rate(self) -> int:
        """The mempool's current minimum fee rate in sat/kvB (0 until it has evicted)."""
        with self._lock:
            return self._min_fee_rate(int(self._clock()))

    def info(self) -> dict[str, Any]:
        """getmempoolinfo's fields (amounts in BTC, rates in BTC/kvB)."""
        with self._lock:
            min_fee = self._min_fee_rate(int(self._clock()))
            return {
                "loaded": self.loaded,
                "size": len(self._entries),
                "bytes": self._total_vsize,
                "usage": self._usage,
                "total_fee": _btc(self._total_fee),
                "maxmempool": self.max_bytes,
                "mempoolminfee": _btc(max(min_fee, self.min_relay_feerate)),
                "minrelaytxfee": _btc(self.min_relay_feerate),
                "incrementalrelayfee": _btc(self.incremental_relay_feerate),
                "unbroadcastcount": 0,
                "fullrbf": True,
                "permitbaremultisig": self.permit_bare_multisig,
                "maxdatacarriersize": self.max_datacarrier_bytes,
            }

    def entry_info(self, txid: bytes) -> dict[str, Any] | None:
        """getmempoolentry's fields for ``txid``, or None when absent."""
        with self._lock:
            e = self._entries.get(txid)
            if e is None:
                return None
            ancestors = self._closure(e.parents, True)
            signals = any(
                txin.sequence < 0xFFFFFFFE
                for t in (e, *(self._entries[a] for a in ancestors))
                for txin in t.tx.inputs
            )
            return {
                "vsize": e.vsize,
                "weight": e.weight,
                "time": e.time,
                "height": e.height,
                "descendantcount": e.desc_count,
                "descendantsize": e.desc_size,
                "ancestorcount": e.anc_count,
                "ancestorsize": e.anc_size,
                "wtxid": _hex(e.wtxid),
                "fees": {
                    "base": _btc(e.fee),
                    "modified": _btc(e.modified_fee),
                    "ancestor": _btc(e.anc_fees),
                    "descendant": _btc(e.desc_fees),
                },
                "depends": sorted(_hex(p) for p in e.parents),
                "spentby": sorted(_hex(c) for c in e.children),
                "bip125-replaceable": signals,
                "unbroadcast": False,
            }

    # -- listeners --------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[MempoolEntry], None]) -> Callable[[], None]:
        """``callback(entry)`` after each transaction ``accept`` admits (outside the lock)."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def add_removal_listener(
        self, callback: Callable[[bytes, RemovalReason], None]
    ) -> Callable[[], None]:
        """``callback(txid, reason)`` for every removal (block, conflict, replaced, evicted…)."""
        self._removal_listeners.append(callback)
        return lambda: (
            self._removal_listeners.remove(callback)
            if callback in self._removal_listeners
            else None
        )

    def _notify(self) -> None:
        with self._lock:
            added, self._pending_added = self._pending_added, []
            removed, self._pending_removed = self._pending_removed, []
        for txid, reason in removed:
            for cb in list(self._removal_listeners):
                try:
                    cb(txid, reason)
                except Exception:
                    log.exception("mempool removal listener %r failed", cb)
        for entry in added:
            for cb in list(self._listeners):
                try:
                    cb(entry)
                except Exception:
                    log.exception("mempool listener %r failed", cb)

    # -- acceptance -------------------------------------------------------------------------
    def accept(
        self,
        tx: Tx,
        *,
        bypass_limits: bool = False,
        allow_replacement: bool = True,
        max_feerate: int | None = None,
        now: float | None = None,
    ) -> AcceptResult:
        """Validate ``tx`` against the tip and policy; admit it when it passes.

        ``bypass_limits`` skips the fee-rate floors (Core does so for re-added block
        transactions). Replacing conflicting transactions (full RBF) needs
        ``allow_replacement``; without it a conflict is refused as ``txn-mempool-conflict``.
        ``max_feerate`` (sat/kvB; sendrawtransaction's maxfeerate) refuses higher fee rates
        as ``max-fee-exceeded``.
        """
        with self._chain_lock, self._lock:
            t = int(self._clock() if now is None else now)
            result = self._accept_locked(
                tx, t, bypass_limits, allow_replacement, None, True, max_feerate
            )
        self._notify()
        return result

    def test_accept(
        self, tx: Tx, *, allow_replacement: bool = True, max_feerate: int | None = None
    ) -> AcceptResult:
        """Dry run of ``accept`` (testmempoolaccept): the mempool is not changed."""
        with self._chain_lock, self._lock:
            try:
                plan = self._validate(tx, False, allow_replacement, None, max_feerate)
            except Rejected as exc:
                return AcceptResult(
                    False, tx.txid, tx.wtxid, reason=exc.reason, message=exc.message
                )
            return AcceptResult(
                True, plan.txid, plan.wtxid, plan.fee, plan.vsize, replaced=tuple(plan.evicted)
            )

    def _accept_locked(
        self,
        tx: Tx,
        now: int,
        bypass_limits: bool,
        allow_replacement: bool,
        verified_flags: int | None,
        notify: bool,
        max_feerate: int | None = None,
    ) -> AcceptResult:
        try:
            plan = self._validate(tx, bypass_limits, allow_replacement, verified_flags, max_feerate)
        except Rejected as exc:
            return AcceptResult(False, tx.txid, tx.wtxid, reason=exc.reason, message=exc.message)
        replaced = tuple(plan.evicted)
        if plan.evicted:
            self._remove(plan.evicted, RemovalReason.REPLACED)
        entry = self._add(plan, now)
        if not bypass_limits:
            self._expire(now)
            self._trim(now)
        if plan.txid not in self._entries:
            return AcceptResult(
                False, plan.txid, plan.wtxid, plan.fee, plan.vsize, R.MEMPOOL_FULL, "", replaced
            )
        if notify:
            self._pending_added.append(entry)
        return AcceptResult(True, plan.txid, plan.wtxid, plan.fee, plan.vsize, replaced=replaced)

    def _validate(
        self,
        tx: Tx,
        bypass_limits: bool,
        allow_replacement: bool,
        verified_flags: int | None,
        max_feerate: int | None = None,
    ) -> _Plan:
        """Core's PreChecks, ReplacementChecks and script checks, in Core's order."""
        # Keep our own parsed copy: callers may mutate theirs, and parsed bytes make
        # sizes and hashes cheap.
        with contextlib.suppress(BitcoinProtocolError):
            tx = Tx.from_bytes(tx.serialize())
        try:
            check_transaction(tx)
        except ConsensusError as exc:
            raise Rejected(exc.reason, exc.message) from None
        if tx.is_coinbase():
            raise Rejected(R.COINBASE)
        check_standard_tx(
            tx,
            permit_bare_multisig=self.permit_bare_multisig,
            max_datacarrier_bytes=self.max_datacarrier_bytes,
            dust_feerate=self.dust_relay_feerate,
        )
        chain = self.chain
        params = chain.params
        tip = chain.tip
        height = tip.height + 1
        if not is_final_tx(tx, height, tip.median_time_past):
            raise Rejected(R.NON_FINAL, "non-final transaction")
        txid, wtxid = tx.txid, tx.wtxid
        if wtxid in self._by_wtxid:
            raise Rejected(R.ALREADY_IN_MEMPOOL)
        if txid in self._entries:
            raise Rejected(R.SAME_NONWITNESS_IN_MEMPOOL)
        entries = self._entries
        conflicts = {s for txin in tx.inputs if (s := self._spenders.get(txin.prevout))}
        if conflicts and not allow_replacement:
            raise Rejected(R.MEMPOOL_CONFLICT, "replacement not allowed here")
        # Inputs: from mempool parents or the UTXO set.
        spent: list[tuple[int, bytes]] = []
        coin_heights: list[int] = []
        parents: set[bytes] = set()
        spends_coinbase = False
        missing = False
        value_in = 0
        maturity = params.coinbase_maturity
        immature = False
        for txin in tx.inputs:
            op = txin.prevout
            parent = entries.get(op[:32])
            if parent is not None:
                index = int.from_bytes(op[32:], "little")
                if index >= len(parent.tx.outputs):
                    missing = True
                    break
                out = parent.tx.outputs[index]
                spent.append((out.value, out.script_pubkey))
                coin_heights.append(height)
                parents.add(parent.txid)
                value_in += out.value
                continue
            coin = chain.get_utxo(op)
            if coin is None:
                missing = True
                break
            if coin.coinbase:
                spends_coinbase = True
                if height - coin.height < maturity:
                    immature = True
            spent.append((coin.amount, coin.script))
            coin_heights.append(coin.height)
            value_in += coin.amount
        if missing:
            for n in range(len(tx.outputs)):
                if chain.get_utxo(txid + n.to_bytes(4, "little")) is not None:
                    raise Rejected(R.ALREADY_KNOWN)
            raise Rejected(CE.BAD_TXNS_INPUTS_MISSINGORSPENT)
        if (
            height >= params.csv_height
            and tx.version >= 2
            and not self._sequence_locks_ok(tx, coin_heights, height, tip.median_time_past)
        ):
            raise Rejected(R.NON_BIP68_FINAL)
        # Consensus::CheckTxInputs
        if immature:
            raise Rejected(CE.BAD_TXNS_PREMATURE_SPEND_OF_COINBASE, "tried to spend coinbase")
        if value_in > MAX_MONEY or any(a > MAX_MONEY for a, _ in spent):
            raise Rejected(CE.BAD_TXNS_INPUTVALUES_OUTOFRANGE)
        value_out = sum(out.value for out in tx.outputs)
        if value_in < value_out:
            raise Rejected(CE.BAD_TXNS_IN_BELOWOUT, f"value in {value_in} < value out {value_out}")
        fee = value_in - value_out
        if fee > MAX_MONEY:
            raise Rejected(CE.BAD_TXNS_FEE_OUTOFRANGE)
        scripts = [s for _, s in spent]
        check_inputs_standard(tx, scripts)
        check_witness_standard(tx, scripts)
        flags = script_flags(height, params)
        spent_outs = [TxOut(a, s) for a, s in spent]
        sigop_cost = get_transaction_sigop_cost(tx, spent_outs, flags)
        if sigop_cost > MAX_STANDARD_TX_SIGOPS_COST:
            raise Rejected(R.TOO_MANY_SIGOPS, f"{sigop_cost}")
        weight = tx.weight
        vsize = adjusted_vsize(weight, sigop_cost)
        modified = fee + self._deltas.get(txid, 0)
        if not bypass_limits:
            now = int(self._clock())
            reject_fee = fee_at(self._min_fee_rate(now), vsize)
            if reject_fee > 0 and modified < reject_fee:
                raise Rejected(R.MEMPOOL_MIN_FEE, f"{modified} < {reject_fee}")
            if modified < fee_at(self.min_relay_feerate, vsize):
                raise Rejected(
                    R.MIN_RELAY_FEE, f"{modified} < {fee_at(self.min_relay_feerate, vsize)}"
                )
        if max_feerate is not None and modified * 1000 > max_feerate * vsize:
            raise Rejected(R.MAX_FEE_EXCEEDED, f"{modified * 1000 // vsize} > {max_feerate}")
        ancestors = self._closure(parents, True)
        evicted: set[bytes] = set()
        if conflicts:
            evicted = set(conflicts) | self._closure(conflicts, False)
        if ancestors & evicted:
            raise Rejected(R.SPENDS_CONFLICTING, "spends an output of a transaction it replaces")
        self._check_limits(ancestors, vsize, evicted)
        if conflicts:
            self._check_replacement(tx, modified, vsize, conflicts, evicted)
        if verified_flags != flags:
            self._check_scripts(tx, spent, flags)
        return _Plan(
            tx,
            txid,
            wtxid,
            fee,
            vsize,
            weight,
            sigop_cost,
            tip.height,
            spends_coinbase,
            parents,
            ancestors,
            evicted,
            flags,
        )

    def _sequence_locks_ok(
        self, tx: Tx, coin_heights: list[int], height: int, tip_mtp: int
    ) -> bool:
        """BIP68 at the tip (Core's CheckSequenceLocksAtTip): mempool coins count at tip+1."""
        chain = self.chain
        min_height = -1
        min_time = -1
        for txin, coin_height in zip(tx.inputs, coin_heights, strict=True):
            seq = txin.sequence
            if seq & SEQUENCE_LOCKTIME_DISABLE_FLAG:
                continue
            if seq & SEQUENCE_LOCKTIME_TYPE_FLAG:
                h = max(coin_height - 1, 0)
                if h >= height - 1:
                    coin_time = tip_mtp
                else:
                    entry = chain.entry(chain.block_hash_at(h))  # type: ignore[arg-type]
                    coin_time = median_time_past(entry)  # type: ignore[arg-type]
                t = (
                    coin_time
                    + ((seq & SEQUENCE_LOCKTIME_MASK) << SEQUENCE_LOCKTIME_GRANULARITY)
                    - 1
                )
                min_time = max(min_time, t)
            else:
                min_height = max(min_height, coin_height + (seq & SEQUENCE_LOCKTIME_MASK) - 1)
        return min_height < height and min_time < tip_mtp

    def _check_limits(self, ancestors: set[bytes], vsize: int, evicted: set[bytes]) -> None:
        """Core's ancestor/descendant package limits (after removing what RBF evicts)."""
        entries = self._entries
        if len(ancestors) + 1 > self.ancestor_limit:
            raise Rejected(
                R.TOO_LONG_CHAIN, f"too many unconfirmed ancestors [limit: {self.ancestor_limit}]"
            )
        size = vsize + sum(entries[a].vsize for a in ancestors)
        if size > self.ancestor_size_limit:
            raise Rejected(
                R.TOO_LONG_CHAIN,
                f"exceeds ancestor size limit [limit: {self.ancestor_size_limit}]",
            )
        try:
            self._check_descendant_limits(ancestors, vsize, evicted, 0, 0)
        except Rejected:
            # Core's CPFP carve-out: one more small child of a single unconfirmed parent.
            if vsize > EXTRA_DESCENDANT_TX_SIZE_LIMIT or len(ancestors) != 1:
                raise
            self._check_descendant_limits(
                ancestors, vsize, evicted, 1, EXTRA_DESCENDANT_TX_SIZE_LIMIT
            )

    def _check_descendant_limits(
        self,
        ancestors: set[bytes],
        vsize: int,
        evicted: set[bytes],
        extra_count: int,
        extra_size: int,
    ) -> None:
        entries = self._entries
        count_limit = self.descendant_limit + extra_count
        size_limit = self.descendant_size_limit + extra_size
        for a in ancestors:
            e = entries[a]
            count, dsize = e.desc_count, e.desc_size
            if evicted:
                gone = self._closure(e.children, False) & evicted
                count -= len(gone)
                dsize -= sum(entries[g].vsize for g in gone)
            if count + 1 > count_limit:
                raise Rejected(
                    R.TOO_LONG_CHAIN,
                    f"too many descendants for tx {e.txid_hex} [limit: {count_limit}]",
                )
            if dsize + vsize > size_limit:
                raise Rejected(
                    R.TOO_LONG_CHAIN, f"exceeds descendant size limit for tx {e.txid_hex}"
                )

    def _check_replacement(
        self, tx: Tx, modified: int, vsize: int, conflicts: set[bytes], evicted: set[bytes]
    ) -> None:
        """BIP125 rules 2-5 (and Core's feerate rule) without the signalling rule: full RBF."""
        entries = self._entries
        hex_id = tx.txid_hex
        if len(evicted) > MAX_REPLACEMENT_CANDIDATES:
            raise Rejected(
                R.TOO_MANY_REPLACEMENTS,
                f"rejecting replacement {hex_id}; too many potential replacements "
                f"({len(evicted)} > {MAX_REPLACEMENT_CANDIDATES})",
            )
        conflict_inputs = {txin.prev_txid for c in conflicts for txin in entries[c].tx.inputs}
        for n, txin in enumerate(tx.inputs):
            if txin.prev_txid not in conflict_inputs and txin.prev_txid in entries:
                raise Rejected(
                    R.REPLACEMENT_ADDS_UNCONFIRMED,
                    f"replacement {hex_id} adds unconfirmed input, idx {n}",
                )
        new_rate = modified * 1000 // vsize
        for c in conflicts:
            e = entries[c]
            old_rate = e.modified_fee * 1000 // e.vsize
            if new_rate <= old_rate:
                raise Rejected(
                    R.INSUFFICIENT_FEE,
                    f"rejecting replacement {hex_id}; new feerate {new_rate} <= old feerate "
                    f"{old_rate} sat/kvB",
                )
        old_fees = sum(entries[c].modified_fee for c in evicted)
        if modified < old_fees:
            raise Rejected(
                R.INSUFFICIENT_FEE,
                f"rejecting replacement {hex_id}, less fees than conflicting txs; "
                f"{modified} < {old_fees}",
            )
        needed = fee_at(self.incremental_relay_feerate, vsize)
        if modified - old_fees < needed:
            raise Rejected(
                R.INSUFFICIENT_FEE,
                f"rejecting replacement {hex_id}, not enough additional fees to relay; "
                f"{modified - old_fees} < {needed}",
            )

    @staticmethod
    def _check_scripts(tx: Tx, spent: list[tuple[int, bytes]], flags: int) -> None:
        try:
            with KernelTx(tx.serialize(), spent) as ktx:
                bad = ktx.first_failure(flags)
        except ScriptCheckError as exc:
            raise Rejected(R.script_failed(str(exc))) from None
        if bad is not None:
            raise Rejected(
                R.script_failed(f"input {bad}: script evaluated to false or failed"),
                f"input {bad} of {tx.txid_hex}",
            )

    # -- bookkeeping ------------------------------------------------------------------------
    def _closure(self, start: set[bytes], up: bool) -> set[bytes]:
        """Transitive parents (``up``) or children of the txids in ``start``, in the pool."""
        entries = self._entries
        seen: set[bytes] = set()
        todo = [t for t in start if t in entries]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            e = entries[t]
            todo.extend(e.parents if up else e.children)
        return seen

    def _add(self, plan: _Plan, now: int) -> MempoolEntry:
        entries = self._entries
        tx = plan.tx
        size = tx.total_size
        self._sequence += 1
        entry = MempoolEntry(
            tx=tx,
            txid=plan.txid,
            wtxid=plan.wtxid,
            fee=plan.fee,
            vsize=plan.vsize,
            weight=plan.weight,
            sigop_cost=plan.sigop_cost,
            time=now,
            height=plan.height,
            spends_coinbase=plan.spends_coinbase,
            sequence=self._sequence,
            usage=2 * size + ENTRY_OVERHEAD,
            delta=self._deltas.get(plan.txid, 0),
            script_flags=plan.flags,
            parents=set(plan.parents),
        )
        mod = entry.modified_fee
        entry.anc_count = 1 + len(plan.ancestors)
        entry.anc_size = entry.vsize
        entry.anc_fees = mod
        entry.anc_sigops = entry.sigop_cost
        entry.desc_size = entry.vsize
        entry.desc_fees = mod
        for a in plan.ancestors:
            ae = entries[a]
            entry.anc_size += ae.vsize
            entry.anc_fees += ae.modified_fee
            entry.anc_sigops += ae.sigop_cost
            ae.desc_count += 1
            ae.desc_size += entry.vsize
            ae.desc_fees += mod
            self._touch(ae)
        for p in plan.parents:
            entries[p].children.add(plan.txid)
        for txin in tx.inputs:
            self._spenders[txin.prevout] = plan.txid
        entries[plan.txid] = entry
        self._by_wtxid[plan.wtxid] = plan.txid
        self._total_vsize += entry.vsize
        self._total_fee += entry.fee
        self._usage += entry.usage
        self._oldest_time = min(self._oldest_time, now)
        self._touch(entry)
        return entry

    def _touch(self, e: MempoolEntry) -> None:
        """Queue ``e`` under its current eviction score; older queue items become stale."""
        e.score_version += 1
        heap = self._evict_heap
        heapq.heappush(heap, (e.descendant_score, -e.time, e.score_version, e.txid))
        if len(heap) > 2 * len(self._entries) + 1024:
            live = [
                (x.descendant_score, -x.time, x.score_version, x.txid)
                for x in self._entries.values()
            ]
            heapq.heapify(live)
            self._evict_heap = live

    def _remove(self, txids: set[bytes], reason: RemovalReason) -> None:
        """Remove exactly ``txids`` (callers add descendants when they must go too)."""
        entries = self._entries
        txids = {t for t in txids if t in entries}
        if not txids:
            return
        for t in txids:
            e = entries[t]
            mod = e.modified_fee
            for a in self._closure(e.parents, True) - txids:
                ae = entries[a]
                ae.desc_count -= 1
                ae.desc_size -= e.vsize
                ae.desc_fees -= mod
                self._touch(ae)
            for d in self._closure(e.children, False) - txids:
                de = entries[d]
                de.anc_count -= 1
                de.anc_size -= e.vsize
                de.anc_fees -= mod
                de.anc_sigops -= e.sigop_cost
        for t in txids:
            e = entries.pop(t)
            for p in e.parents:
                if p in entries:
                    entries[p].children.discard(t)
            for c in e.children:
                if c in entries:
                    entries[c].parents.discard(t)
            for txin in e.tx.inputs:
                if self._spenders.get(txin.prevout) == t:
                    del self._spenders[txin.prevout]
            del self._by_wtxid[e.wtxid]
            self._total_vsize -= e.vsize
            self._total_fee -= e.fee
            self._usage -= e.usage
            self._sequence += 1
            self._pending_removed.append((t, reason))

    def prioritise(self, txid: bytes, fee_delta: int) -> None:
        """Core's prioritisetransaction: add ``fee_delta`` sat to the fee used for policy/mining."""
        with self._lock:
            self._deltas[txid] = self._deltas.get(txid, 0) + fee_delta
            if self._deltas[txid] == 0:
                del self._deltas[txid]
            e = self._entries.get(txid)
            if e is None:
                return
            e.delta += fee_delta
            e.anc_fees += fee_delta
            e.desc_fees += fee_delta
            self._touch(e)
            for a in self._closure(e.parents, True):
                self._entries[a].desc_fees += fee_delta
                self._touch(self._entries[a])
            for d in self._closure(e.children, False):
                self._entries[d].anc_fees += fee_delta
            self._sequence += 1

    def fee_deltas(self) -> dict[bytes, int]:
        with self._lock:
            return dict(self._deltas)

    # -- size limit and expiry ------------------------------------------------------------------
    def _min_fee_rate(self, now: int) -> int:
        """Core's GetMinFee: the rolling minimum decays (half-life 12 h) once a block arrived."""
        if not self._block_since_bump or self._rolling_min_fee == 0:
            return round(self._rolling_min_fee)
        if now > self._last_rolling_update + 10:
            halflife = ROLLING_FEE_HALFLIFE
            if self._usage < self.max_bytes / 4:
                halflife /= 4
            elif self._usage < self.max_bytes / 2:
                halflife /= 2
            self._rolling_min_fee /= 2 ** ((now - self._last_rolling_update) / halflife)
            self._last_rolling_update = now
            if self._rolling_min_fee < self.incremental_relay_feerate / 2:
                self._rolling_min_fee = 0.0
                return 0
        return max(round(self._rolling_min_fee), self.incremental_relay_feerate)

    def _trim(self, now: int) -> None:
        """Core's TrimToSize: evict lowest descendant-score packages until under the limit."""
        entries = self._entries
        while entries and self._usage > self.max_bytes:
            while True:  # skip stale heap items (score changed or entry gone)
                _, _, version, txid = heapq.heappop(self._evict_heap)
                worst = entries.get(txid)
                if worst is not None and worst.score_version == version:
                    break
            removed_rate = (
                worst.desc_fees * 1000 // worst.desc_size + self.incremental_relay_feerate
            )
            if removed_rate > self._rolling_min_fee:
                self._rolling_min_fee = float(removed_rate)
                self._block_since_bump = False
            doomed = {worst.txid} | self._closure(worst.children, False)
            self._remove(doomed, RemovalReason.SIZELIMIT)

    def _expire(self, now: int) -> None:
        cutoff = now - self.expiry_seconds
        if self._oldest_time >= cutoff:
            return  # a lower bound on entry times: nothing can be old enough
        old = {t for t, e in self._entries.items() if e.time < cutoff}
        if old:
            self._remove(old | self._closure(old, False), RemovalReason.EXPIRY)
        self._oldest_time = min((e.time for e in self._entries.values()), default=now)

    # -- chain sync ------------------------------------------------------------------------------
    def _on_tip_change(self, change: TipChange) -> None:
        """Chainstate callback (chain thread, chain lock held): follow the new tip."""
        with self._lock:
            if change.disconnected:
                self._update_for_reorg(change)
            elif self._entries or self._deltas:  # empty pool (e.g. initial sync): nothing to do
                for h in change.connected:
                    block = self.chain.get_block(h)
                    if block is not None:
                        self._remove_for_block(block.txs)
            self._block_since_bump = True
            self._last_rolling_update = int(self._clock())
        self._notify()

    def _remove_for_block(self, txs: list[Tx]) -> None:
        """Core's removeForBlock: drop confirmed transactions and everything they conflict with."""
        for tx in txs[1:]:
            txid = tx.txid
            if txid in self._entries:
                self._remove({txid}, RemovalReason.BLOCK)
            self._deltas.pop(txid, None)
            for txin in tx.inputs:
                spender = self._spenders.get(txin.prevout)
                if spender is not None and spender != txid:
                    self._remove(
                        {spender} | self._closure({spender}, False), RemovalReason.CONFLICT
                    )

    def _update_for_reorg(self, change: TipChange) -> None:
        """Re-admit the disconnected blocks' transactions, then re-check everything still here.

        The pool is rebuilt by re-accepting (oldest disconnected block first, then the old
        entries in arrival order) against the new tip; scripts already verified with the
        same flags are not run again. What no longer passes leaves with reason REORG.
        """
        chain = self.chain
        resurrect: list[Tx] = []
        for h in reversed(change.disconnected):
            block = chain.get_block(h)
            if block is not None:
                resurrect.extend(block.txs[1:])
        confirmed: set[bytes] = set()
        for h in change.connected:
            block = chain.get_block(h)
            if block is not None:
                confirmed.update(tx.txid for tx in block.txs)
        old = sorted(self._entries.values(), key=lambda e: e.sequence)
        self._entries.clear()
        self._evict_heap = []
        self._by_wtxid.clear()
        self._spenders.clear()
        self._total_vsize = self._total_fee = self._usage = 0
        self._sequence += 1
        now = int(self._clock())
        for tx in resurrect:
            if tx.txid not in confirmed:
                self._accept_locked(tx, now, True, True, None, False)
        for e in old:
            if e.txid in confirmed:
                self._pending_removed.append((e.txid, RemovalReason.BLOCK))
                self._deltas.pop(e.txid, None)
                continue
            result = self._accept_locked(e.tx, e.time, True, True, e.script_flags, False)
            if not result.accepted and e.txid not in self._entries:
                log.debug("dropped %s after reorg: %s", e.txid_hex, result.reason)
                self._pending_removed.append((e.txid, RemovalReason.REORG))
        for tx in confirmed:
            self._deltas.pop(tx, None)
        self._trim(now)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> int:
        """Write every entry (arrival order) and the fee deltas atomically; returns the count."""
        with self._lock:
            records = [
                persist.SavedTx(e.tx.serialize(), e.time, e.delta)
                for e in sorted(self._entries.values(), key=lambda e: e.sequence)
            ]
            others = {t: d for t, d in self._deltas.items() if t not in self._entries}
        persist.write_atomic(path, persist.encode(records, others))
        return len(records)

    def load(self, path: str | os.PathLike[str]) -> LoadResult:
        """Re-accept the transactions of a saved file (each through full acceptance)."""
        self.loaded = False
        try:
            if not os.path.exists(path):
                return LoadResult(0, 0, 0, 0)
            with open(path, "rb") as f:
                records, deltas = persist.decode(f.read())
            accepted = failed = expired = there = 0
            with self._chain_lock, self._lock:
                now = int(self._clock())
                for txid, delta in deltas.items():
                    self._deltas[txid] = self._deltas.get(txid, 0) + delta
                for rec in records:
                    try:
                        tx = Tx.from_bytes(rec.raw)
                    except Exception:
                        failed += 1
                        continue
                    if rec.delta:
                        self._deltas[tx.txid] = rec.delta
                    if rec.time < now - self.expiry_seconds:
                        expired += 1
                        continue
                    result = self._accept_locked(tx, rec.time, False, True, None, False)
                    if result.accepted:
                        accepted += 1
                    elif result.reason in (R.ALREADY_IN_MEMPOOL, R.SAME_NONWITNESS_IN_MEMPOOL):
                        there += 1
                    else:
                        failed += 1
            return LoadResult(accepted, failed, expired, there)
        finally:
            self.loaded = True
            self._notify()
