"""Solo mining on our own node through the ASIC driver: template → job → chips → block.

The shortest honest path from the node's block template to a block found by BM13xx
chips: the template's header fields become a ``MiningJob``, the driver sends it to the
chain, re-hashes every nonce the chips return, and a nonce that meets the network target
completes the block, which goes straight to the chainstate. The Stratum V2 module will
put a channel between the two; until then this is how the demo mines on a (simulated) board.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.asic.driver import AsicDriver
from drivers.asic.job import BIP320_MASK, MiningJob
from node.chain.chainstate import BlockStatus, Chainstate
from node.mining.template import TemplateBuilder
from protocols.bitcoin.block import Block


@dataclass(frozen=True, slots=True)
class FoundBlock:
    block: Block
    chip_index: int
    nonces_seen: int
    seconds: float


class SoloAsicMiner:
    def __init__(
        self, chain: Chainstate, driver: AsicDriver, payout_script: bytes, mempool: object = None
    ) -> None:
        self.chain = chain
        self.driver = driver
        self.payout_script = payout_script
        self.templates = TemplateBuilder(chain, mempool)
        self._extranonce = 0

    def _job(self) -> tuple[MiningJob, Block]:
        self._extranonce += 1
        block = self.templates.build().to_block(
            self.payout_script, self._extranonce.to_bytes(8, "little")
        )
        h = block.header
        job = MiningJob(
            h.version, h.prev_hash, h.merkle_root, h.time, h.bits, BIP320_MASK, ref=block
        )
        return job, block

    def mine_block(
        self, timeout: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> FoundBlock:
        """Send fresh work and wait until the chips find a block; the node then connects it."""
        job, block = self._job()
        self.driver.new_block(job)
        start = clock()
        seen = 0
        while clock() - start < timeout:
            for found in self.driver.service(timeout=0.05):
                seen += 1
                if not found.is_block or found.job.ref is not block:
                    continue
                block.header.version = found.version
                block.header.nonce = found.nonce
                result = self.chain.process_block(block)
                if result.status != BlockStatus.ACCEPTED or not result.tip_changed:
                    raise RuntimeError(f"node refused the block the chips found: {result.reason}")
                return FoundBlock(block, found.chip_index, seen, clock() - start)
        raise TimeoutError(f"no block found in {timeout:.0f} s ({seen} nonces)")
