"""The mempool: unconfirmed transactions checked like Bitcoin Core, following the chain tip.

API (stable; RPC, P2P relay and the template builder use it; txids/wtxids are 32 bytes in
internal byte order, amounts in satoshis unless a method says BTC):

- ``Mempool(chainstate, *, max_size_mb=300, min_relay_feerate=1000, incremental_relay_feerate
  =1000, dust_relay_feerate=3000, ancestor_limit=25, ancestor_size_limit_kvb=101,
  descendant_limit=25, descendant_size_limit_kvb=101, expiry_hours=336,
  permit_bare_multisig=True, max_datacarrier_bytes=100000, clock=time.time,
  follow_chain=True)``: rates in sat/kvB. Subscribes to the chainstate's tip changes (block
  connect removes confirmed txs and conflicts; a reorg re-admits the disconnected blocks'
  txs and re-checks the rest). ``close()`` unsubscribes.
- ``accept(tx, *, bypass_limits=False, allow_replacement=True, max_feerate=None, now=None)
  -> AcceptResult`` (``accepted, txid, wtxid, fee, vsize, reason, message, replaced``;
  ``missing_inputs`` says "orphan"; ``to_dict()`` is testmempoolaccept's object; the pool
  stores its own parsed copy of ``tx``). ``test_accept(tx, *, allow_replacement=True,
  max_feerate=None)`` is the dry run. ``max_feerate`` (sat/kvB) refuses with
  ``max-fee-exceeded``. Reasons are Core's strings (``node.mempool.errors``,
  ``node.chain.errors``); the debug text is in ``message``.
- ``get(txid) -> MempoolEntry | None`` (``tx, fee, modified_fee, vsize, weight, sigop_cost,
  time, height, parents, children, anc_*/desc_*``), ``get_by_wtxid``, ``spender_of(outpoint)``,
  ``entries()`` (arrival order: parents before children), ``txids()``, ``len()``, ``in``,
  ``ancestors(txid)``/``descendants(txid)``, ``sequence`` (changes on every update).
- ``info()``: getmempoolinfo's dict; ``entry_info(txid)``: getmempoolentry's dict (BTC).
- ``prioritise(txid, fee_delta)`` (prioritisetransaction), ``fee_deltas()``.
- ``add_listener(cb(entry))`` for each tx ``accept`` admits (P2P relay), and
  ``add_removal_listener(cb(txid, RemovalReason))``; both return an unsubscribe function and
  run outside the mempool lock.
- ``save(path) -> count`` (atomic: tmp, fsync, rename) and ``load(path) -> LoadResult
  (accepted, failed, expired, already_there)``; every loaded tx goes through ``accept`` again.
- ``locked()``: context manager holding the chain lock then the mempool lock (the template
  builder's consistent view).

Policy: Core's defaults (v30 data-carrier rules, full RBF: BIP125 rules 2-5 and the
feerate rule without signalling, at most 100 evictions; 25 / 101 kvB ancestor and
descendant limits with the CPFP carve-out; sigop-adjusted vsize everywhere). Not done:
TRUC (version 3 is refused as ``version``), package relay/ephemeral dust, an orphan pool
(that is P2P's; ``missing_inputs`` tells it), unbroadcast tracking.

Threading: all methods are thread-safe. Lock order is chain lock, then mempool lock (the
chainstate's RLock is used; a public ``Chainstate.lock`` would be picked up first).
Script checks use the kernel with the *consensus* flags of the next block: it cannot take
Core's extra policy flags, so policy-only script rules (low-S, minimal push...) are not applied.
"""

from node.mempool.entry import MempoolEntry, RemovalReason
from node.mempool.errors import MempoolError, MempoolPersistError
from node.mempool.pool import AcceptResult, LoadResult, Mempool

__all__ = [
    "AcceptResult",
    "LoadResult",
    "Mempool",
    "MempoolEntry",
    "MempoolError",
    "MempoolPersistError",
    "RemovalReason",
]
