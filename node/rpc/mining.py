"""Mining calls: submitblock, getmininginfo, and regtest's generatetoaddress / generateblock.

getblocktemplate lives in ``node.rpc.template_rpc``.
"""

from __future__ import annotations

import time
from typing import Any

from node.chain.chainstate import BlockStatus
from node.mining.assembler import WITNESS_RESERVED_VALUE
from node.mining.generate import MiningError, generate_blocks
from node.rpc.blockchain import getdifficulty
from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError
from node.rpc.params import parse_hex
from protocols.bitcoin.address import address_to_script
from protocols.bitcoin.block import Block
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.hashes import hash_to_hex
from protocols.bitcoin.pow import bits_to_target

WITNESS_COMMITMENT_PREFIX = bytes.fromhex("6a24aa21a9ed")


def _fill_witness_nonce(block: Block) -> None:
    """Core's UpdateUncommittedBlockStructures: a committed block gets its coinbase nonce."""
    coinbase = block.txs[0]
    committed = any(o.script_pubkey.startswith(WITNESS_COMMITMENT_PREFIX) for o in coinbase.outputs)
    if committed and not coinbase.inputs[0].witness:
        coinbase.inputs[0].witness = [WITNESS_RESERVED_VALUE]
        coinbase.invalidate()
        block._size = -1


def submitblock(ctx: NodeContext, hexdata: str, dummy: Any = None) -> str | None:
    try:
        block = Block.from_bytes(parse_hex(hexdata, "Block"))
    except (BitcoinProtocolError, RpcError):
        raise RpcError(RpcCode.DESERIALIZATION_ERROR, "Block decode failed") from None
    if not block.txs or not block.txs[0].is_coinbase():
        raise RpcError(RpcCode.DESERIALIZATION_ERROR, "Block does not start with a coinbase")
    _fill_witness_nonce(block)
    result = ctx.chain.process_block(block)
    if result.status == BlockStatus.DUPLICATE:
        return "duplicate"
    if result.status == BlockStatus.INVALID:
        return result.reason or "rejected"
    if not ctx.chain.in_active_chain(block.hash):
        return "inconclusive"
    return None


def getmininginfo(ctx: NodeContext) -> dict[str, Any]:
    chain = ctx.chain
    tip = chain.tip
    entry = chain.entry(tip.hash)
    next_bits = chain.tree.next_work_required(
        entry, max(int(time.time()), tip.median_time_past + 1)
    )
    out = {
        "blocks": tip.height,
        "bits": f"{next_bits:08x}",
        "difficulty": getdifficulty(ctx),
        "target": f"{bits_to_target(next_bits).target:064x}",
        "networkhashps": _network_hashps(ctx),
        "chain": chain.params.networks_entry().core_name,
        "warnings": [],
    }
    if ctx.mempool is not None:
        out["pooledtx"] = ctx.mempool.info()["size"]
    return out


def _network_hashps(ctx: NodeContext, lookup: int = 120) -> float:
    chain = ctx.chain
    tip = chain.entry(chain.tip.hash)
    start = chain.tree.ancestor(tip, max(0, tip.height - lookup))
    if start is None or tip.time == start.time:
        return 0.0
    return (tip.chainwork - start.chainwork) / (tip.time - start.time)


def _regtest_only(ctx: NodeContext, method: str) -> None:
    if ctx.chain.params.name != "regtest":
        raise RpcError(RpcCode.METHOD_NOT_FOUND, f"{method} is only available on regtest")


def _script_for(ctx: NodeContext, address: str) -> bytes:
    try:
        return address_to_script(address, ctx.network)
    except ValueError:
        raise RpcError(RpcCode.INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None


def generatetoaddress(
    ctx: NodeContext, nblocks: int, address: str, maxtries: int = 1_000_000
) -> list[str]:
    _regtest_only(ctx, "generatetoaddress")
    script = _script_for(ctx, address)
    try:
        hashes = generate_blocks(
            ctx.chain, script, int(nblocks), max_tries=int(maxtries), templates=ctx.templates
        )
    except MiningError as exc:
        raise RpcError(RpcCode.MISC_ERROR, str(exc)) from None
    return [hash_to_hex(h) for h in hashes]


def generateblock(
    ctx: NodeContext, output: str, transactions: list, submit: bool = True
) -> dict[str, Any]:
    """Mine one block paying ``output`` holding exactly ``transactions`` (txids from the mempool or raw hex)."""
    _regtest_only(ctx, "generateblock")
    from node.mining.assembler import solve
    from node.mining.generate import build_block_on_tip
    from protocols.bitcoin.hashes import hex_to_hash
    from protocols.bitcoin.tx import Tx

    script = _script_for(ctx, output)
    txs = []
    fees = 0
    for item in transactions:
        if len(item) == 64:
            mempool = ctx.need_mempool()
            entry = mempool.get(hex_to_hash(item))
            if entry is None:
                raise RpcError(
                    RpcCode.INVALID_ADDRESS_OR_KEY, f"Transaction {item} not in mempool."
                )
            txs.append(entry.tx)
            fees += entry.fee
        else:
            try:
                txs.append(Tx.from_bytes(parse_hex(item, "Transaction")))
            except BitcoinProtocolError:
                raise RpcError(
                    RpcCode.DESERIALIZATION_ERROR, f"Transaction decode failed for {item}"
                ) from None
            # Fees of raw transactions are unknown here; Core computes them from the UTXO set.
            fees += _fee_from_utxos(ctx, txs[-1])
    block = build_block_on_tip(ctx.chain, script, txs, fees=fees)
    if not solve(block.header):
        raise RpcError(RpcCode.MISC_ERROR, "Failed to make block.")
    out: dict[str, Any] = {"hash": block.hash_hex}
    if submit:
        result = ctx.chain.process_block(block)
        if result.status != BlockStatus.ACCEPTED:
            raise RpcError(RpcCode.VERIFY_ERROR, f"TestBlockValidity failed: {result.reason}")
    else:
        out["hex"] = block.serialize().hex()
    return out


def _fee_from_utxos(ctx: NodeContext, tx: Any) -> int:
    total_in = 0
    for txin in tx.inputs:
        coin = ctx.chain.get_utxo(txin.prevout)
        if coin is None:
            raise RpcError(
                RpcCode.VERIFY_ERROR, "TestBlockValidity failed: bad-txns-inputs-missingorspent"
            )
        total_in += coin.amount
    return total_in - sum(o.value for o in tx.outputs)


METHODS = [submitblock, getmininginfo, generatetoaddress, generateblock]
