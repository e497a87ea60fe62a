"""Raw transactions: decoderawtransaction, getrawtransaction.

Without a transaction index (a pruned node keeps none) getrawtransaction finds
mempool transactions, or a transaction in a stored block named by ``blockhash``,
as Bitcoin Core does.
"""

from __future__ import annotations

from typing import Any

from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError
from node.rpc.jsonfmt import tx_json
from node.rpc.params import parse_hash, parse_hex
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.tx import Tx


def decode_tx(hexstring: str) -> Tx:
    try:
        return Tx.from_bytes(parse_hex(hexstring, "TX"))
    except (BitcoinProtocolError, RpcError):
        raise RpcError(RpcCode.DESERIALIZATION_ERROR, "TX decode failed") from None


def decoderawtransaction(
    ctx: NodeContext, hexstring: str, iswitness: bool | None = None
) -> dict[str, Any]:
    out = tx_json(decode_tx(hexstring), ctx.network)
    del out["hex"]
    return out


def getrawtransaction(
    ctx: NodeContext, txid: str, verbose: int | bool = 0, blockhash: str | None = None
) -> Any:
    h = parse_hash(txid, "parameter 1")
    verbosity = int(verbose)
    if blockhash is not None:
        bh = parse_hash(blockhash, "parameter 3")
        if ctx.chain.entry(bh) is None:
            raise RpcError(RpcCode.INVALID_ADDRESS_OR_KEY, "Block hash not found")
        block = ctx.chain.get_block(bh)
        if block is None:
            raise RpcError(RpcCode.MISC_ERROR, "Block not available")
        for tx in block.txs:
            if tx.txid == h:
                if not verbosity:
                    return tx.serialize().hex()
                out = tx_json(tx, ctx.network, block_hash=bh)
                out["in_active_chain"] = ctx.chain.in_active_chain(bh)
                entry = ctx.chain.entry(bh)
                if out["in_active_chain"]:
                    out["confirmations"] = ctx.chain.height - entry.height + 1
                out["blocktime"] = out["time"] = entry.time
                return out
        raise RpcError(
            RpcCode.INVALID_ADDRESS_OR_KEY, "No such transaction found in the provided block."
        )
    if ctx.mempool is not None:
        entry = ctx.mempool.get(h)
        if entry is not None:
            return tx_json(entry.tx, ctx.network) if verbosity else entry.tx.serialize().hex()
    raise RpcError(
        RpcCode.INVALID_ADDRESS_OR_KEY,
        "No such mempool transaction. Use -txindex or provide a block hash to enable blockchain "
        "transaction queries. Use gettransaction for wallet transactions.",
    )


METHODS = [decoderawtransaction, getrawtransaction]
