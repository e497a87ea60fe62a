"""Import blocks from files into a chainstate (``blvm chain import``).

Accepted file formats, detected from the first bytes:

- text: one hex-encoded block per line (blank lines ignored);
- Core block files: ``magic || length || block`` records (``blk*.dat`` of the same network);
- raw: serialized blocks simply concatenated; each block's end is found by parsing it.

Import stops at the first invalid block: nothing after it is connected.
"""

from __future__ import annotations

import logging
import mmap
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from node.chain.chainstate import BlockResult, BlockStatus, Chainstate
from node.chain.errors import PREV_BLK_NOT_FOUND, ChainError
from protocols.bitcoin.block import HEADER_SIZE
from protocols.bitcoin.compact import read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.tx import Tx

log = logging.getLogger(__name__)

MAX_PENDING_BYTES = 512 * 1024 * 1024  # out-of-order blocks held back, at most
_HEX = frozenset((string.hexdigits + string.whitespace).encode())


class ImportInputError(ChainError):
    """A block file cannot be read or split into blocks."""


def _block_end(data: bytes, pos: int) -> int:
    """End offset of the serialized block starting at ``pos``."""
    if pos + HEADER_SIZE > len(data):
        raise DecodeError("truncated block header")
    count, p = read_compact_size(data, pos + HEADER_SIZE)
    if count * 60 > len(data) - p:
        raise DecodeError("transaction count exceeds the remaining data")
    parse = Tx.parse
    for _ in range(count):
        _, p = parse(data, p)
    return p


def iter_blocks(path: Path, magic: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (ordinal from 1, serialized block) from a block file in any supported format.

    Hex files are read line by line and binary files are memory-mapped, so a file of
    any size is imported without loading it whole.
    """
    try:
        f = path.open("rb")
    except OSError as exc:
        raise ImportInputError(f"cannot read {path}: {exc}") from exc
    with f:
        sample = f.read(4096)
        f.seek(0)
        if not sample:
            return
        if sample.strip() and all(b in _HEX for b in sample):
            n = 0
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text:
                    continue
                try:
                    raw = bytes.fromhex(text.decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    raise ImportInputError(f"{path}:{lineno}: not a hex block") from None
                n += 1
                yield n, raw
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from _iter_binary(path, data, magic)


def _iter_binary(path: Path, data: mmap.mmap, magic: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    n = 0
    size = len(data)
    framed = data[:4] == magic
    while pos < size:
        if framed:
            if data[pos : pos + 4] != magic or pos + 8 > size:
                if not data[pos:].strip(b"\x00"):
                    return  # Core pre-allocates block files with zeros
                raise ImportInputError(f"{path}: bad block record at offset {pos}")
            length = int.from_bytes(data[pos + 4 : pos + 8], "little")
            start, end = pos + 8, pos + 8 + length
            if end > size:
                raise ImportInputError(f"{path}: truncated block record at offset {pos}")
        else:
            start = pos
            try:
                end = _block_end(data, pos)
            except DecodeError as exc:
                raise ImportInputError(
                    f"{path}: cannot parse block at offset {pos}: {exc}"
                ) from None
        n += 1
        yield n, data[start:end]
        pos = end


@dataclass(slots=True)
class ImportReport:
    processed: int = 0
    connected_before: int = 0
    duplicates: int = 0
    invalid: BlockResult | None = None
    file: str | None = None
    ordinal: int | None = None
    orphans: int = 0  # blocks whose parent never appeared (left unconnected)


@dataclass(slots=True)
class _Pending:
    """Blocks that arrived before their parent (Core's blk files are not in height order)."""

    by_parent: dict[bytes, list[tuple[str, int, bytes]]] = field(default_factory=dict)
    count: int = 0
    size: int = 0

    def add(self, path: str, ordinal: int, raw: bytes) -> None:
        self.by_parent.setdefault(raw[4:36], []).append((path, ordinal, raw))
        self.count += 1
        self.size += len(raw)

    def children(self, block_hash: bytes) -> list[tuple[str, int, bytes]]:
        kids = self.by_parent.pop(block_hash, [])
        self.count -= len(kids)
        self.size -= sum(len(k[2]) for k in kids)
        return kids


def import_files(
    chainstate: Chainstate,
    paths: list[Path],
    progress: Callable[[str], None] | None = None,
    progress_every: float = 5.0,
    max_pending_bytes: int = MAX_PENDING_BYTES,
) -> ImportReport:
    """Feed every block of every file; stop at the first invalid one.

    A block whose parent is not known yet is held back (up to ``max_pending_bytes``)
    and fed as soon as the parent is accepted, as Core's ``-loadblock`` does; blocks
    still waiting at the end are counted in ``orphans`` and reported as the first
    of them with reason ``prev-blk-not-found``.
    """
    report = ImportReport(connected_before=chainstate.height)
    started = last = time.monotonic()
    magic = chainstate.params.message_start
    pending = _Pending()
    for path in paths:
        for ordinal, raw in iter_blocks(path, magic):
            queue = [(str(path), ordinal, raw)]
            while queue:
                src, num, block = queue.pop()
                result = chainstate.process_block(block)
                report.processed += 1
                if result.status is BlockStatus.DUPLICATE:
                    report.duplicates += 1
                elif result.reason == PREV_BLK_NOT_FOUND and (
                    pending.size + len(block) <= max_pending_bytes
                ):
                    report.processed -= 1  # counted when it is fed again
                    pending.add(src, num, block)
                    continue
                elif result.status is BlockStatus.INVALID:
                    report.invalid = result
                    report.file = src
                    report.ordinal = num
                    return report
                if result.block_hash is not None and pending.count:
                    queue.extend(pending.children(result.block_hash))
            now = time.monotonic()
            if progress is not None and now - last >= progress_every:
                last = now
                rate = report.processed / max(now - started, 1e-9)
                progress(
                    f"imported {report.processed} blocks, height {chainstate.height} "
                    f"({rate:,.0f} blocks/s)"
                )
    if pending.count:
        report.orphans = pending.count
        src, num, block = min(
            (item for kids in pending.by_parent.values() for item in kids),
            key=lambda item: (paths.index(Path(item[0])), item[1]),
        )
        report.invalid = chainstate.process_block(block)
        report.file = src
        report.ordinal = num
    return report
