"""Bitcoin Core's engine (py-bitcoinkernel) as a test oracle for whole blocks."""

from __future__ import annotations

import tempfile
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
