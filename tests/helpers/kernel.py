"""Bitcoin Core's engine (py-bitcoinkernel) as a test oracle for whole blocks."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pbk

CHAIN_TYPES = {
    "mainnet": pbk.ChainType.MAINNET,
    "testnet4": pbk.ChainType.TESTNET_4,
    "signet": pbk.ChainType.SIGNET,
    "regtest": pbk.ChainType.REGTEST,
}


class KernelOracle:
    """A kernel ChainstateManager in its own datadir.

    ``submit`` answers whether the block became the active tip: the kernel's
    ``process_block`` reports only whether the block was new, and a block that
    fails at connection is stored but never activated.
    """

    def __init__(self, chain: str = "regtest", datadir: Path | None = None) -> None:
        self._tmp = None
        if datadir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="blvm-kernel-")
            datadir = Path(self._tmp.name)
        self.last_state: str | None = None
        callbacks = pbk.ValidationInterfaceCallbacks(block_checked=self._checked)
        self.chainman = pbk.load_chainman(datadir, CHAIN_TYPES[chain], callbacks)

    def _checked(self, _user: object, _block: object, state: pbk.BlockValidationState) -> None:
        self.last_state = f"{state.validation_mode.name}/{state.block_validation_result.name}"

    @property
    def tip(self) -> bytes:
        """The active chain's tip (``best_entry`` is the best *header*, maybe without data)."""
        chain = self.chainman.get_active_chain()
        return bytes(chain.block_tree_entries[chain.height].block_hash)

    @property
    def height(self) -> int:
        return self.chainman.get_active_chain().height

    def submit(self, raw: bytes, block_hash: bytes) -> bool:
        try:
            block = pbk.Block(raw)
        except RuntimeError:  # "Failed to create Block"
            return False
        self.last_state = None
        try:
            self.chainman.process_block(block)
        except pbk.ProcessBlockException:
            return False
        return self.tip == block_hash

    def close(self) -> None:
        del self.chainman
        if self._tmp is not None:
            self._tmp.cleanup()

    def utxo_totals(self) -> tuple[int, int]:
        """(count, amount) of the kernel's UTXO set, from the active chain's blocks minus
        what its undo data says they spent (the kernel has no UTXO lookup)."""
        chainman = self.chainman
        chain = chainman.get_active_chain()
        count = total = 0
        for height in range(1, chain.height + 1):  # the genesis output is unspendable
            entry = chain.block_tree_entries[height]
            for tx in chainman.blocks[entry].transactions:
                for out in tx.outputs:
                    if not _unspendable(bytes(out.script_pubkey)):
                        count += 1
                        total += out.amount
            for txs in chainman.block_spent_outputs[entry].transactions:
                for coin in txs.coins:
                    count -= 1
                    total -= coin.output.amount
        return count, total


def _unspendable(script: bytes) -> bool:
    return (len(script) > 0 and script[0] == 0x6A) or len(script) > 10_000


@dataclass(frozen=True)
class KernelResult:
    tip_hash: bytes  # internal byte order
    height: int
    utxos: int
    total_amount: int
    accepted: list[bool]  # per block: process_block raised nothing


def run_kernel(blocks: list[bytes], workdir: Path) -> KernelResult:
    """Process ``blocks`` in order on a fresh regtest kernel and report where it ended."""
    workdir.mkdir(parents=True, exist_ok=True)
    oracle = KernelOracle("regtest", workdir)
    accepted = []
    for raw in blocks:
        try:
            oracle.chainman.process_block(pbk.Block(raw))
            accepted.append(True)
        except pbk.ProcessBlockException:
            accepted.append(False)
    utxos, total = oracle.utxo_totals()
    result = KernelResult(oracle.tip, oracle.height, utxos, total, accepted)
    oracle.close()
    return result
