"""py-bitcoinkernel (Bitcoin Core's validation engine) as the reference for chainstate tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pbk


@dataclass(frozen=True)
class KernelResult:
    tip_hash: bytes  # internal byte order
    height: int
    utxos: int
    total_amount: int
    accepted: list[bool]  # per block: process_block raised nothing


def _unspendable(script: bytes) -> bool:
    return (len(script) > 0 and script[0] == 0x6A) or len(script) > 10_000


def run_kernel(blocks: list[bytes], workdir: Path) -> KernelResult:
    """Process ``blocks`` in order on a fresh regtest kernel; UTXO totals from the active
    chain's blocks minus what its undo data says they spent."""
    workdir.mkdir(parents=True, exist_ok=True)
    opts = pbk.ContextOptions()
    opts.set_chainparams(pbk.ChainParameters(pbk.ChainType.REGTEST))
    context = pbk.Context(opts)
    cm_opts = pbk.ChainstateManagerOptions(context, str(workdir), str(workdir / "blocks"))
    chainman = pbk.ChainstateManager(cm_opts)
    accepted = []
    for raw in blocks:
        try:
            chainman.process_block(pbk.Block(raw))
            accepted.append(True)
        except pbk.ProcessBlockException:
            accepted.append(False)
    chain = chainman.get_active_chain()
    height = chain.height
    utxos = 0
    total = 0
    for h in range(1, height + 1):  # the genesis output is not spendable
        entry = chain.block_tree_entries[h]
        block = chainman.blocks[entry]
        for tx in block.transactions:
            for out in tx.outputs:
                if not _unspendable(bytes(out.script_pubkey)):
                    utxos += 1
                    total += out.amount
        spent = chainman.block_spent_outputs[entry]
        for txs in spent.transactions:
            for coin in txs.coins:
                utxos -= 1
                total -= coin.output.amount
    tip = chain.block_tree_entries[height]
    tip_hash = bytes(tip.block_hash)
    del chainman
    return KernelResult(tip_hash, height, utxos, total, accepted)
