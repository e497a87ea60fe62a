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
from dataclasses import dataclass
from pathlib import Path

from node.chain.chainstate import BlockResult, BlockStatus, Chainstate
from node.chain.errors import ChainError
from protocols.bitcoin.block import HEADER_SIZE
from protocols.bitcoin.compact import read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.tx import Tx

log = logging.getLogger(__name__)

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


def import_files(
    chainstate: Chainstate,
    paths: list[Path],
    progress: Callable[[str], None] | None = None,
    progress_every: float = 5.0,
) -> ImportReport:
    """Feed every block of every file; stop at the first invalid one."""
    report = ImportReport(connected_before=chainstate.height)
    started = last = time.monotonic()
    magic = chainstate.params.message_start
    for path in paths:
        for ordinal, raw in iter_blocks(path, magic):
            result = chainstate.process_block(raw)
            report.processed += 1
            if result.status is BlockStatus.DUPLICATE:
                report.duplicates += 1
            elif result.status is BlockStatus.INVALID:
                report.invalid = result
                report.file = str(path)
                report.ordinal = ordinal
                return report
            now = time.monotonic()
            if progress is not None and now - last >= progress_every:
                last = now
                rate = report.processed / max(now - started, 1e-9)
                progress(
                    f"imported {report.processed} blocks, height {chainstate.height} "
                    f"({rate:,.0f} blocks/s)"
                )
    return report
