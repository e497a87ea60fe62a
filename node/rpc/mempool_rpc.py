"""Mempool calls: getrawmempool, getmempoolinfo, getmempoolentry, sendrawtransaction,
testmempoolaccept."""

from __future__ import annotations

from typing import Any

from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError
from node.rpc.params import parse_hash
from node.rpc.rawtx import decode_tx
from protocols.bitcoin.hashes import hash_to_hex
from protocols.bitcoin.tx import outpoint

COIN = 100_000_000
DEFAULT_MAX_FEERATE = 0.10  # BTC/kvB, Core's DEFAULT_MAX_RAW_TX_FEE_RATE


def getrawmempool(ctx: NodeContext, verbose: bool = False, mempool_sequence: bool = False) -> Any:
    mempool = ctx.need_mempool()
    if verbose and mempool_sequence:
        raise RpcError(
            RpcCode.INVALID_PARAMETER, "Verbose results cannot contain mempool sequence values."
        )
    if verbose:
        out = {}
        for txid in mempool.txids():
            info = mempool.entry_info(txid)
            if info is not None:
                out[hash_to_hex(txid)] = info
        return out
    txids = [hash_to_hex(t) for t in mempool.txids()]
    if mempool_sequence:
        return {"txids": txids, "mempool_sequence": mempool.sequence}
    return txids


def getmempoolinfo(ctx: NodeContext) -> dict[str, Any]:
    return ctx.need_mempool().info()


def getmempoolentry(ctx: NodeContext, txid: str) -> dict[str, Any]:
    info = ctx.need_mempool().entry_info(parse_hash(txid, "txid"))
    if info is None:
        raise RpcError(RpcCode.INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
    return info


def _max_fee_ok(result: Any, maxfeerate: float | int) -> bool:
    if not maxfeerate:
        return True
    limit = round(float(maxfeerate) * COIN) * result.vsize // 1000
    return result.fee <= limit


def sendrawtransaction(
    ctx: NodeContext, hexstring: str, maxfeerate: float | int = DEFAULT_MAX_FEERATE
) -> str:
    mempool = ctx.need_mempool()
    tx = decode_tx(hexstring)
    if mempool.get(tx.txid) is not None:
        return hash_to_hex(tx.txid)  # already there: Core returns the txid
    if _confirmed(ctx, tx):
        raise RpcError(RpcCode.VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
    dry = mempool.test_accept(tx)
    if dry.accepted and not _max_fee_ok(dry, maxfeerate):
        raise RpcError(
            RpcCode.VERIFY_REJECTED,
            "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
        )
    result = mempool.accept(tx)
    if not result.accepted:
        if result.missing_inputs:
            raise RpcError(RpcCode.VERIFY_ERROR, "bad-txns-inputs-missingorspent")
        raise RpcError(RpcCode.VERIFY_REJECTED, result.reason or "rejected")
    return hash_to_hex(tx.txid)


def _confirmed(ctx: NodeContext, tx: Any) -> bool:
    """True when one of ``tx``'s own outputs is in the UTXO set (it is already mined)."""
    return any(ctx.chain.get_utxo(outpoint(tx.txid, n)) is not None for n in range(len(tx.outputs)))


def testmempoolaccept(
    ctx: NodeContext, rawtxs: list, maxfeerate: float | int = DEFAULT_MAX_FEERATE
) -> list[dict[str, Any]]:
    mempool = ctx.need_mempool()
    if not 1 <= len(rawtxs) <= 25:
        raise RpcError(
            RpcCode.INVALID_PARAMETER, "Array must contain between 1 and 25 transactions."
        )
    out = []
    for raw in rawtxs:
        tx = decode_tx(raw)
        result = mempool.test_accept(tx)
        entry = result.to_dict()
        if result.accepted and not _max_fee_ok(result, maxfeerate):
            entry = {
                "txid": hash_to_hex(tx.txid),
                "wtxid": hash_to_hex(tx.wtxid),
                "allowed": False,
                "reject-reason": "max-fee-exceeded",
            }
        out.append(entry)
    return out


METHODS = [getrawmempool, getmempoolinfo, getmempoolentry, sendrawtransaction, testmempoolaccept]
