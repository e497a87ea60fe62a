"""Mine blocks on our own tip: regtest's generatetoaddress / generateblock.

Blocks are assembled here (BIP34 coinbase, witness commitment), solved on the
CPU (only sensible at regtest difficulty) and handed to the chainstate like any
block from a peer, so they are validated and relayed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.errors import ChainError
from node.chain.params import block_subsidy
from node.mining.assembler import assemble_block, create_coinbase, solve
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import Tx

BLOCK_VERSION = 0x20000000


class MiningError(ChainError):
    """A block we built could not be solved or was refused by our own chainstate."""


def build_block_on_tip(
    chain: Chainstate,
    script_pubkey: bytes,
    txs: Sequence[Tx] = (),
    *,
    fees: int = 0,
    extra: bytes = b"",
    now: Callable[[], float] = time.time,
) -> Block:
    """An unsolved block on the active tip paying subsidy + ``fees`` to ``script_pubkey``."""
    tip = chain.tip
    entry = chain.entry(tip.hash)
    height = tip.height + 1
    block_time = max(int(now()), tip.median_time_past + 1)
    bits = chain.tree.next_work_required(entry, block_time)
    coinbase = create_coinbase(
        height, block_subsidy(height, chain.params) + fees, script_pubkey, extra=extra, txs=txs
    )
    return assemble_block(tip.hash, block_time, bits, [coinbase, *txs], BLOCK_VERSION)


def generate_blocks(
    chain: Chainstate,
    script_pubkey: bytes,
    count: int,
    *,
    max_tries: int = 1_000_000,
    now: Callable[[], float] = time.time,
    templates: Any = None,
) -> list[bytes]:
    """Mine ``count`` blocks on our tip; returns their hashes.

    With ``templates`` (a ``node.mining.template.TemplateBuilder``) each block carries the
    mempool's best transactions, as generatetoaddress does in Core; else coinbase only.
    """
    hashes = []
    for i in range(count):
        extra = i.to_bytes(4, "little") + int(now() * 1000).to_bytes(8, "little")
        if templates is not None:
            block = templates.build().to_block(script_pubkey, extra)
        else:
            block = build_block_on_tip(chain, script_pubkey, extra=extra, now=now)
        if not solve(block.header, max_tries):
            raise MiningError(f"no nonce found in {max_tries} tries (difficulty too high for CPU)")
        result = chain.process_block(block)
        if result.status != BlockStatus.ACCEPTED or not result.tip_changed:
            raise MiningError(f"our own block was refused: {result.reason} {result.message}")
        hashes.append(block.hash)
    return hashes
