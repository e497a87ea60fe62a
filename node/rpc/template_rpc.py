"""getblocktemplate (BIP22/23: template mode with longpoll, and proposal mode) as Bitcoin Core
answers it."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from node.chain.chainstate import TipChange
from node.rpc.blockchain import in_initial_download
from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError
from node.rpc.params import parse_hex
from protocols.bitcoin.block import Block
from protocols.bitcoin.errors import BitcoinProtocolError

LONGPOLL_MEMPOOL_WAIT = 60.0  # Core re-answers a longpoll after a minute if the mempool changed
LONGPOLL_MAX_WAIT = 600.0


class TipWaiter:
    """Wakes longpolling getblocktemplate calls when the tip moves."""

    def __init__(self, ctx: NodeContext) -> None:
        self.cond = threading.Condition()
        self.unsubscribe = ctx.chain.subscribe(self._on_tip)

    def _on_tip(self, _change: TipChange) -> None:
        with self.cond:
            self.cond.notify_all()

    def wait(self, ctx: NodeContext, tip: bytes, sequence: int) -> None:
        start = time.monotonic()
        with self.cond:
            while ctx.chain.tip.hash == tip:
                waited = time.monotonic() - start
                if waited >= LONGPOLL_MAX_WAIT:
                    return
                if (
                    waited >= LONGPOLL_MEMPOOL_WAIT
                    and ctx.mempool is not None
                    and ctx.mempool.sequence != sequence
                ):
                    return
                self.cond.wait(1.0)


class _TxListCache:
    """The GBT ``transactions`` list of the last template, reused while it is unchanged.

    The builder hands out the same transaction tuple while tip and mempool stay put (only
    ``curtime`` moves), and encoding thousands of transactions dominates a cached call.
    """

    def __init__(self) -> None:
        self._last: tuple[tuple, list[dict[str, Any]]] | None = None

    def gbt(self, template: Any) -> dict[str, Any]:
        txs = template.transactions
        last = self._last
        if last is not None and last[0] is txs:
            encoded = last[1]
        else:
            encoded = [t.to_dict() for t in txs]
            self._last = (txs, encoded)
        out = dataclasses.replace(template, transactions=()).to_gbt()
        out["transactions"] = list(encoded)
        return out


_TX_LISTS = _TxListCache()


def getblocktemplate(ctx: NodeContext, template_request: dict | None = None) -> Any:
    request = template_request or {}
    mode = request.get("mode", "template")
    if mode == "proposal":
        return _proposal(ctx, request.get("data"))
    if mode != "template":
        raise RpcError(RpcCode.INVALID_PARAMETER, "Invalid mode")
    rules = request.get("rules") or []
    if "segwit" not in rules:
        raise RpcError(
            RpcCode.INVALID_PARAMETER,
            'getblocktemplate must be called with the segwit rule set (call with {"rules": ["segwit"]})',
        )
    params = ctx.chain.params
    if params.is_signet and "signet" not in rules:
        raise RpcError(
            RpcCode.INVALID_PARAMETER,
            'getblocktemplate must be called with the signet rule set (call with {"rules": ["segwit", "signet"]})',
        )
    if params.name != "regtest":
        if ctx.p2p is None or not ctx.on_loop(lambda: len(ctx.p2p.peers)):
            raise RpcError(RpcCode.CLIENT_NOT_CONNECTED, "Bitcoin is not connected!")
        if in_initial_download(ctx):
            raise RpcError(RpcCode.CLIENT_IN_INITIAL_DOWNLOAD, "Bitcoin is downloading blocks...")
    longpollid = request.get("longpollid")
    if isinstance(longpollid, str) and len(longpollid) > 64 and ctx.longpoll is not None:
        tip_hex, seq = longpollid[:64], longpollid[64:]
        tip = bytes.fromhex(tip_hex)[::-1]
        ctx.longpoll.wait(ctx, tip, int(seq) if seq.isdigit() else -1)
    out = _TX_LISTS.gbt(ctx.templates.build())
    out["capabilities"] = ["proposal"]
    return out


def _proposal(ctx: NodeContext, data: Any) -> str | None:
    """BIP23 proposal: would this block connect on our tip (proof of work aside)? None when
    it would, else the reason, as Core answers (``duplicate``, ``inconclusive-not-best-
    prevblk``, a reject reason)."""
    if not isinstance(data, str):
        raise RpcError(RpcCode.TYPE_ERROR, "Missing data String key for proposal")
    try:
        block = Block.from_bytes(parse_hex(data, "Block"))
    except (BitcoinProtocolError, RpcError):
        raise RpcError(RpcCode.DESERIALIZATION_ERROR, "Block decode failed") from None
    if not block.txs or not block.txs[0].is_coinbase():
        return "bad-cb-missing"
    return ctx.chain.test_block_validity(block)


METHODS = [getblocktemplate]
