"""Append-only block and undo files (``blk00000.dat`` / ``rev00000.dat``).

Each record is ``magic(4) || length(4, LE) || payload``. A block goes into the current
blk file (a new file starts when the size cap would be exceeded); its undo data goes
into the rev file with the SAME number, so a blk/rev pair holds everything about a
set of blocks and pruning deletes pairs. Writes go straight to the file descriptor
(no Python buffering); :meth:`BlockStore.sync` fsyncs every file written since the
last sync, and the chainstate calls it before any LMDB commit that points into
those files, so the index never refers to bytes that are not on disk.

Per-file statistics (``FileInfo``) live in memory here and are persisted by the
chainstate in the same transaction as the index.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from node.chain.errors import ChainError

DEFAULT_MAX_FILE_SIZE = 128 * 1024 * 1024  # Core's MAX_BLOCKFILE_SIZE
FAST_PRUNE_FILE_SIZE = 0x10000  # Core's -fastprune block file size (regtest tests only)
_REC = struct.Struct("<4sI")
_INFO = struct.Struct("<IIIii")


class BlockStoreError(ChainError):
    """A block or undo record is missing or corrupt on disk."""


@dataclass(slots=True)
class FileInfo:
    blocks: int = 0
    size: int = 0  # bytes in blkNNNNN.dat
    undo_size: int = 0  # bytes in revNNNNN.dat
    height_first: int = -1
    height_last: int = -1

    def serialize(self) -> bytes:
        return _INFO.pack(
            self.blocks, self.size, self.undo_size, self.height_first, self.height_last
        )

    @classmethod
    def parse(cls, data: bytes) -> FileInfo:
        return cls(*_INFO.unpack(data))

    def add_height(self, height: int) -> None:
        if self.height_first < 0 or height < self.height_first:
            self.height_first = height
        if height > self.height_last:
            self.height_last = height


class BlockStore:
    """Block and undo records in numbered files under ``directory``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        magic: bytes,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        files: dict[int, FileInfo] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.magic = magic
        self.max_file_size = max_file_size
        self.files: dict[int, FileInfo] = dict(files or {})
        self.current = max(self.files) if self.files else 0
        self.files.setdefault(self.current, FileInfo())
        self._fds: dict[tuple[str, int], int] = {}
        self._unsynced: set[tuple[str, int]] = set()
        self._new_files = False
        self.dirty_info: set[int] = set()

    # -- paths and descriptors --------------------------------------------------------------
    def path(self, kind: str, num: int) -> Path:
        return self.dir / f"{kind}{num:05d}.dat"

    def _fd(self, kind: str, num: int) -> int:
        key = (kind, num)
        fd = self._fds.get(key)
        if fd is None:
            if len(self._fds) >= 16:
                self._close_some()
            path = self.path(kind, num)
            if not path.exists():
                self._new_files = True
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            self._fds[key] = fd
        return fd

    def _close_some(self) -> None:
        for key in list(self._fds):
            if key not in self._unsynced:
                os.close(self._fds.pop(key))

    # -- writes -------------------------------------------------------------------------------
    def _append(self, kind: str, num: int, payload: bytes | memoryview) -> int:
        fd = self._fd(kind, num)
        start = os.lseek(fd, 0, os.SEEK_END)
        data = _REC.pack(self.magic, len(payload)) + payload
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        self._unsynced.add((kind, num))
        return start + _REC.size

    def write_block(self, raw: bytes, height: int) -> tuple[int, int]:
        """Append a serialized block; returns (file number, payload offset)."""
        need = len(raw) + _REC.size
        info = self.files[self.current]
        if info.size and info.size + need > self.max_file_size:
            self.current += 1
            info = self.files[self.current] = FileInfo()
        pos = self._append("blk", self.current, raw)
        info.size = pos + len(raw)
        info.blocks += 1
        info.add_height(height)
        self.dirty_info.add(self.current)
        return self.current, pos

    def write_undo(self, num: int, payload: bytes) -> int:
        """Append undo data to ``rev<num>``, next to its block; returns the payload offset."""
        pos = self._append("rev", num, payload)
        info = self.files.setdefault(num, FileInfo())
        info.undo_size = pos + len(payload)
        self.dirty_info.add(num)
        return pos

    def sync(self) -> None:
        """fsync every file written since the last call (before the index refers to it)."""
        for key in sorted(self._unsynced):
            fd = self._fds.get(key)
            if fd is not None:
                os.fsync(fd)
        if self._new_files:
            self._new_files = False
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)  # new files must survive a crash too
            finally:
                os.close(dfd)
        self._unsynced.clear()

    # -- reads --------------------------------------------------------------------------------
    def _read(self, kind: str, num: int, pos: int) -> bytes:
        try:
            fd = self._fd(kind, num) if (kind, num) in self._fds else None
            if fd is None:
                path = self.path(kind, num)
                if not path.exists():
                    raise BlockStoreError(f"{path.name} is missing (pruned?)")
                fd = self._fd(kind, num)
            head = os.pread(fd, _REC.size, pos - _REC.size)
            if len(head) != _REC.size:
                raise BlockStoreError(f"{kind}{num:05d}.dat: truncated record at {pos}")
            magic, length = _REC.unpack(head)
            if magic != self.magic:
                raise BlockStoreError(f"{kind}{num:05d}.dat: bad magic at {pos}")
            data = os.pread(fd, length, pos)
        except OSError as exc:
            raise BlockStoreError(f"cannot read {kind}{num:05d}.dat: {exc}") from exc
        if len(data) != length:
            raise BlockStoreError(f"{kind}{num:05d}.dat: truncated record at {pos}")
        return data

    def read_block(self, num: int, pos: int) -> bytes:
        return self._read("blk", num, pos)

    def read_undo(self, num: int, pos: int) -> bytes:
        return self._read("rev", num, pos)

    # -- pruning ------------------------------------------------------------------------------
    def total_size(self) -> int:
        return sum(i.size + i.undo_size for i in self.files.values())

    def delete_files(self, nums: list[int]) -> None:
        """Remove blk/rev pairs (the index must already say their blocks are gone)."""
        for num in nums:
            for kind in ("blk", "rev"):
                fd = self._fds.pop((kind, num), None)
                if fd is not None:
                    os.close(fd)
                self._unsynced.discard((kind, num))
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path(kind, num))
            if num in self.files:
                self.files[num] = FileInfo()
                self.dirty_info.add(num)

    def close(self) -> None:
        self.sync()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
