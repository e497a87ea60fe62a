"""Core's 206-block regtest fixture (``regtest_blocks_1_206.txt``) with its spent outputs."""

from __future__ import annotations

from pathlib import Path

from node.chain.scriptcheck import ScriptJob
from protocols.bitcoin.block import Block
from protocols.bitcoin.tx import TxOut, outpoint


def load_blocks(vectors: Path) -> list[Block]:
    lines = (vectors / "regtest_blocks_1_206.txt").read_text().split()
    return [Block.from_hex(line) for line in lines]


def script_jobs(blocks: list[Block]) -> list[list[ScriptJob]]:
    """Per block (height = index + 1), the script jobs of its non-coinbase transactions."""
    utxo: dict[bytes, TxOut] = {}
    out: list[list[ScriptJob]] = []
    for block in blocks:
        jobs = []
        for i, tx in enumerate(block.txs):
            if i:
                spent = [utxo.pop(txin.prevout) for txin in tx.inputs]
                jobs.append(ScriptJob(i, tx.serialize(), spent))
            for n, txout in enumerate(tx.outputs):
                utxo[outpoint(tx.txid, n)] = txout
        out.append(jobs)
    return out
