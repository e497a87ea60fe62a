"""Chain queries: getblockchaininfo, getblock, getblockheader, getchaintips, ..."""

from __future__ import annotations

import time
from typing import Any

from node.chain.headers import EntryStatus, HeaderEntry, median_time_past
from node.rpc.context import NodeContext
from node.rpc.errors import RpcCode, RpcError
from node.rpc.jsonfmt import block_json, header_json
from node.rpc.params import parse_hash
from protocols.bitcoin.block import BlockHeader
from protocols.bitcoin.hashes import hash_to_hex
from protocols.bitcoin.networks import get_network
from protocols.bitcoin.pow import bits_to_target, difficulty

IBD_MAX_TIP_AGE = 24 * 3600


def _entry(ctx: NodeContext, block_hash: bytes) -> HeaderEntry:
    entry = ctx.chain.entry(block_hash)
    if entry is None:
        raise RpcError(RpcCode.INVALID_ADDRESS_OR_KEY, "Block not found")
    return entry


def _header_fields(ctx: NodeContext, entry: HeaderEntry) -> dict[str, Any]:
    chain = ctx.chain
    active = chain.in_active_chain(entry.hash)
    next_hash = chain.block_hash_at(entry.height + 1) if active else None
    return header_json(
        BlockHeader.parse(entry.raw),
        height=entry.height,
        confirmations=chain.height - entry.height + 1 if active else -1,
        chainwork=entry.chainwork,
        n_tx=entry.tx_count,
        mediantime=median_time_past(entry),
        prev=entry.prev_hash if entry.height > 0 else None,
        next_hash=next_hash,
    )


def in_initial_download(ctx: NodeContext) -> bool:
    tip = ctx.chain.tip
    if ctx.chain.params.name == "regtest":
        return False
    return tip.time < time.time() - IBD_MAX_TIP_AGE


def getblockchaininfo(ctx: NodeContext) -> dict[str, Any]:
    chain = ctx.chain
    tip = chain.tip
    prune = chain.prune_info()
    out = {
        "chain": get_network(chain.params.network).core_name,
        "blocks": tip.height,
        "headers": chain.tree.best.height,
        "bestblockhash": tip.hash_hex,
        "bits": f"{chain.entry(tip.hash).bits:08x}",
        "target": f"{bits_to_target(chain.entry(tip.hash).bits).target:064x}",
        "difficulty": difficulty(chain.entry(tip.hash).bits),
        "time": tip.time,
        "mediantime": tip.median_time_past,
        "verificationprogress": 1.0
        if not in_initial_download(ctx)
        else tip.height / max(chain.tree.best.height, 1),
        "initialblockdownload": in_initial_download(ctx),
        "chainwork": f"{tip.chainwork:064x}",
        "size_on_disk": prune.size_on_disk,
        "pruned": prune.pruned,
        "warnings": [],
    }
    if prune.pruned:
        out["pruneheight"] = prune.prune_height
        out["automatic_pruning"] = True
        out["prune_target_size"] = prune.target_bytes
    return out


def getbestblockhash(ctx: NodeContext) -> str:
    return ctx.chain.tip.hash_hex


def getblockcount(ctx: NodeContext) -> int:
    return ctx.chain.height


def getblockhash(ctx: NodeContext, height: int) -> str:
    block_hash = ctx.chain.block_hash_at(int(height)) if 0 <= height <= ctx.chain.height else None
    if block_hash is None:
        raise RpcError(RpcCode.INVALID_PARAMETER, "Block height out of range")
    return hash_to_hex(block_hash)


def getblockheader(ctx: NodeContext, blockhash: str, verbose: bool = True) -> Any:
    entry = _entry(ctx, parse_hash(blockhash))
    if not verbose:
        return entry.raw.hex()
    return _header_fields(ctx, entry)


def getblock(ctx: NodeContext, blockhash: str, verbosity: int | bool = 1) -> Any:
    h = parse_hash(blockhash)
    entry = _entry(ctx, h)
    verbosity = int(verbosity)
    raw = ctx.chain.get_block_bytes(h)
    if raw is None:
        # Pruning clears HAVE_DATA but keeps the transaction count (Core's IsBlockPruned).
        if entry.tx_count > 0 and ctx.chain.prune_info().pruned:
            raise RpcError(RpcCode.MISC_ERROR, "Block not available (pruned data)")
        raise RpcError(RpcCode.MISC_ERROR, "Block not available (not fully downloaded)")
    if verbosity <= 0:
        return raw.hex()
    block = ctx.chain.get_block(h)
    return block_json(block, _header_fields(ctx, entry), ctx.network, verbosity)


def getchaintips(ctx: NodeContext) -> list[dict[str, Any]]:
    chain = ctx.chain
    entries = list(chain.tree.entries())
    parents = {e.prev_hash for e in entries if e.height > 0}
    tips = [e for e in entries if e.hash not in parents]
    active_tip = chain.tip.hash
    if active_tip not in {e.hash for e in tips}:
        tips.append(chain.entry(active_tip))
    out = []
    for e in sorted(tips, key=lambda e: -e.height):
        fork = e
        while not chain.in_active_chain(fork.hash):
            fork = fork.parent
        if e.hash == active_tip:
            status = "active"
        elif e.status & EntryStatus.FAILED_MASK:
            status = "invalid"
        elif not _all_have_data(e, fork):
            status = "headers-only"
        elif e.status & EntryStatus.VALID_SCRIPTS:
            status = "valid-fork"
        else:
            status = "valid-headers"
        out.append(
            {
                "height": e.height,
                "hash": e.hash_hex,
                "branchlen": e.height - fork.height,
                "status": status,
            }
        )
    return out


def _all_have_data(entry: HeaderEntry, fork: HeaderEntry) -> bool:
    e = entry
    while e is not fork:
        if not e.status & EntryStatus.HAVE_DATA:
            return False
        e = e.parent
    return True


def getdifficulty(ctx: NodeContext) -> float:
    return difficulty(ctx.chain.entry(ctx.chain.tip.hash).bits)


PRUNE_TIMESTAMP_MIN = 1_000_000_000  # Core reads larger "heights" as block timestamps


def pruneblockchain(ctx: NodeContext, height: int) -> int:
    """Apply pruning now; returns the height of the last pruned block (-1: none yet).

    Only automatic pruning is run: usage is brought to the target (files more than 288
    blocks below the tip go first), so ``height`` bounds the call like Core's checks do but
    files are not deleted beyond what the target asks for.
    """
    chain = ctx.chain
    if not chain.policy.enabled:
        raise RpcError(RpcCode.MISC_ERROR, "Cannot prune blocks because node is not in prune mode.")
    if height < 0:
        raise RpcError(RpcCode.INVALID_PARAMETER, "Negative block height.")
    if height > PRUNE_TIMESTAMP_MIN:
        raise RpcError(
            RpcCode.INVALID_PARAMETER, "Pruning by block timestamp is not supported; give a height."
        )
    if height > chain.height:
        raise RpcError(
            RpcCode.INVALID_PARAMETER, "Blockchain is shorter than the attempted prune height."
        )
    chain.flush()
    return chain.prune_info().prune_height - 1


def uptime(ctx: NodeContext) -> int:
    return int(time.time() - ctx.started)


METHODS = [
    getblockchaininfo,
    getbestblockhash,
    getblockcount,
    getblockhash,
    getblockheader,
    getblock,
    getchaintips,
    getdifficulty,
    pruneblockchain,
    uptime,
]
