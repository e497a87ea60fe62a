"""A small persisted address book: peers we heard of or connected to.

Kept to a bounded size (oldest-seen evicted) and written atomically (temp file,
fsync, rename) so a crash never leaves a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

MAX_ADDRESSES = 1000


@dataclass(slots=True)
class KnownAddress:
    host: str
    port: int
    services: int = 0
    last_seen: int = 0
    last_success: int = 0
    failures: int = 0


class AddressBook:
    def __init__(self, path: Path | None, limit: int = MAX_ADDRESSES) -> None:
        self.path = path
        self.limit = limit
        self._addrs: dict[tuple[str, int], KnownAddress] = {}
        if path is not None and path.exists():
            try:
                for row in json.loads(path.read_text()):
                    a = KnownAddress(**row)
                    self._addrs[(a.host, a.port)] = a
            except (ValueError, TypeError):
                self._addrs.clear()  # a damaged book is only a cache: start afresh

    def __len__(self) -> int:
        return len(self._addrs)

    def add(self, host: str, port: int, services: int, seen: int) -> None:
        key = (host, port)
        entry = self._addrs.get(key)
        if entry is None:
            if len(self._addrs) >= self.limit:
                oldest = min(self._addrs.values(), key=lambda a: a.last_seen)
                del self._addrs[(oldest.host, oldest.port)]
            self._addrs[key] = KnownAddress(host, port, services, seen)
        else:
            entry.services |= services
            entry.last_seen = max(entry.last_seen, seen)

    def mark_success(self, host: str, port: int, when: int) -> None:
        self.add(host, port, 0, when)
        entry = self._addrs[(host, port)]
        entry.last_success = when
        entry.failures = 0

    def mark_failure(self, host: str, port: int) -> None:
        entry = self._addrs.get((host, port))
        if entry is not None:
            entry.failures += 1

    def candidates(self, exclude: set[tuple[str, int]]) -> list[KnownAddress]:
        """Addresses worth trying, best first."""
        pool = [a for key, a in self._addrs.items() if key not in exclude and a.failures < 5]
        return sorted(pool, key=lambda a: (-a.last_success, a.failures, -a.last_seen))

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(a) for a in self._addrs.values()]
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".peers-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(rows, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
