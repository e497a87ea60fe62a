"""Transactions, blocks and headers as Bitcoin Core's RPC prints them."""

from __future__ import annotations

import contextlib
from typing import Any

from protocols.bitcoin.address import script_to_address
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.hashes import hash_to_hex
from protocols.bitcoin.pow import bits_to_target, difficulty
from protocols.bitcoin.script import ScriptError, classify, script_to_asm
from protocols.bitcoin.tx import Tx

COIN = 100_000_000


def amount(sats: int) -> float:
    """Satoshis as the BTC number Core prints (8 decimal places)."""
    return round(sats / COIN, 8)


def script_pubkey_json(script: bytes, network: str) -> dict[str, Any]:
    try:
        kind = str(classify(script)[0])
        asm = script_to_asm(script)
    except ScriptError:
        kind, asm = "nonstandard", "[error]"
    out: dict[str, Any] = {"asm": asm, "hex": script.hex(), "type": kind}
    with contextlib.suppress(ValueError):
        out["address"] = script_to_address(script, network)
    return out


def tx_json(tx: Tx, network: str, *, block_hash: bytes | None = None) -> dict[str, Any]:
    vin = []
    for txin in tx.inputs:
        if tx.is_coinbase():
            entry: dict[str, Any] = {"coinbase": txin.script_sig.hex()}
        else:
            try:
                asm = script_to_asm(txin.script_sig)
            except ScriptError:
                asm = "[error]"
            entry = {
                "txid": hash_to_hex(txin.prev_txid),
                "vout": txin.prev_index,
                "scriptSig": {"asm": asm, "hex": txin.script_sig.hex()},
            }
        if txin.witness:
            entry["txinwitness"] = [item.hex() for item in txin.witness]
        entry["sequence"] = txin.sequence
        vin.append(entry)
    vout = [
        {
            "value": amount(out.value),
            "n": n,
            "scriptPubKey": script_pubkey_json(out.script_pubkey, network),
        }
        for n, out in enumerate(tx.outputs)
    ]
    out = {
        "txid": hash_to_hex(tx.txid),
        "hash": hash_to_hex(tx.wtxid),
        "version": tx.version,
        "size": tx.total_size,
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.locktime,
        "vin": vin,
        "vout": vout,
    }
    if block_hash is not None:
        out["blockhash"] = hash_to_hex(block_hash)
    out["hex"] = tx.serialize().hex()
    return out


def header_json(
    header: BlockHeader,
    *,
    height: int,
    confirmations: int,
    chainwork: int,
    n_tx: int,
    mediantime: int,
    prev: bytes | None,
    next_hash: bytes | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "hash": header.hash_hex,
        "confirmations": confirmations,
        "height": height,
        "version": header.version,
        "versionHex": f"{header.version & 0xFFFFFFFF:08x}",
        "merkleroot": hash_to_hex(header.merkle_root),
        "time": header.time,
        "mediantime": mediantime,
        "nonce": header.nonce,
        "bits": f"{header.bits:08x}",
        "target": f"{bits_to_target(header.bits).target:064x}",
        "difficulty": difficulty(header.bits),
        "chainwork": f"{chainwork:064x}",
        "nTx": n_tx,
    }
    if prev is not None:
        out["previousblockhash"] = hash_to_hex(prev)
    if next_hash is not None:
        out["nextblockhash"] = hash_to_hex(next_hash)
    return out


def block_json(
    block: Block, header: dict[str, Any], network: str, verbosity: int
) -> dict[str, Any]:
    out = dict(header)
    out["strippedsize"] = block.base_size
    out["size"] = block.size
    out["weight"] = block.weight
    if verbosity >= 2:
        out["tx"] = [tx_json(tx, network) for tx in block.txs]
    else:
        out["tx"] = [hash_to_hex(tx.txid) for tx in block.txs]
    return out
