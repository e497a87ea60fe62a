"""Which block/undo file pairs a pruned node may delete (Core's FindFilesToPrune).

Rules: pruning is off (0) or a target of at least 550 MiB; nothing is pruned until
the tip passes the network's ``prune_after_height``; a file is deletable only when
every block in it is more than ``MIN_BLOCKS_TO_KEEP`` (288) below the tip, so undo
data for the last 288 blocks always survives and reorgs of that depth keep working;
oldest files go first until usage (plus a buffer for the next writes) fits the target.

``fast_prune`` is a regtest-only test mode (like Core's ``-fastprune``): 64 KiB
block files, any positive target (fractions of a MiB allowed), pruning from height 100.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.chain.blockstore import FileInfo
from node.chain.errors import ChainError

MIN_BLOCKS_TO_KEEP = 288
MIN_PRUNE_TARGET_MIB = 550
MIB = 1024 * 1024
# Room kept free for the next block and undo writes (Core: BLOCKFILE + UNDOFILE chunk sizes).
PRUNE_BUFFER = 16 * MIB + 1 * MIB
FAST_PRUNE_AFTER_HEIGHT = 100


class PruneConfigError(ChainError):
    """An unusable prune target (the message says what is allowed)."""


@dataclass(frozen=True, slots=True)
class PrunePolicy:
    target_bytes: int  # 0 = pruning off
    prune_after_height: int
    buffer_bytes: int

    @property
    def enabled(self) -> bool:
        return self.target_bytes > 0

    @classmethod
    def from_mib(
        cls, prune_mib: float, prune_after_height: int, *, fast_prune: bool = False
    ) -> PrunePolicy:
        if prune_mib < 0:
            raise PruneConfigError("prune target cannot be negative")
        if prune_mib == 0:
            return cls(0, prune_after_height, 0)
        if fast_prune:
            return cls(int(prune_mib * MIB), FAST_PRUNE_AFTER_HEIGHT, 0)
        if prune_mib < MIN_PRUNE_TARGET_MIB:
            raise PruneConfigError(
                f"prune target {prune_mib} MiB is below the minimum of "
                f"{MIN_PRUNE_TARGET_MIB} MiB; use 0 to disable pruning"
            )
        if prune_mib != int(prune_mib):
            raise PruneConfigError("prune target must be a whole number of MiB")
        return cls(int(prune_mib) * MIB, prune_after_height, PRUNE_BUFFER)


def files_to_prune(
    files: dict[int, FileInfo], current_file: int, tip_height: int, policy: PrunePolicy
) -> list[int]:
    """File numbers to delete now, oldest first (never the file being written)."""
    if not policy.enabled or tip_height <= policy.prune_after_height:
        return []
    last_prunable = tip_height - MIN_BLOCKS_TO_KEEP
    usage = sum(i.size + i.undo_size for i in files.values())
    if usage + policy.buffer_bytes < policy.target_bytes:
        return []
    chosen: list[int] = []
    for num in sorted(files):
        if usage + policy.buffer_bytes < policy.target_bytes:
            break
        info = files[num]
        if num == current_file or info.size == 0:
            continue
        if info.height_last < 0 or info.height_last > last_prunable:
            continue
        chosen.append(num)
        usage -= info.size + info.undo_size
    return chosen
