"""How running simulated boards announce themselves (read by ``blvm hw scan``).

Each board writes ``<runtime dir>/<board id>.json`` atomically (temp file, fsync,
rename) and removes it on exit::

    {"id": "...", "port": "/dev/pts/7", "model": "BM1370", "chips": 4, "pid": 1234,
     "link": ".../<id>.tty", "control": ".../<id>.sock", "hashrate_hps": 100000.0,
     "sim_ticket_difficulty": 2.3e-05, "baud": 115740}

``port`` is the serial device to open; ``link`` is a symlink that keeps pointing at
the current port across a simulated unplug; ``control`` is the control socket
(faults, status, reset line, I2C). The runtime dir is ``$BLVM_SIM_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/blvm-sim``, else ``/tmp/blvm-sim-<uid>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def runtime_dir(create: bool = False) -> Path:
    """Directory holding discovery records, control sockets and port links."""
    explicit = os.environ.get("BLVM_SIM_RUNTIME_DIR")
    if explicit:
        path = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR") and Path(os.environ["XDG_RUNTIME_DIR"]).is_dir():
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "blvm-sim"
    else:
        path = Path(tempfile.gettempdir()) / f"blvm-sim-{os.getuid()}"
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class SimBoardRecord:
    """One running simulated board, as published in its discovery file."""

    id: str
    port: str
    model: str
    chips: int
    pid: int
    link: str = ""
    control: str = ""
    hashrate_hps: float = 0.0
    sim_ticket_difficulty: float | None = None
    baud: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def record_path(board_id: str, base: Path | None = None) -> Path:
    return (base or runtime_dir()) / f"{board_id}.json"


def write_record(record: SimBoardRecord, base: Path | None = None) -> Path:
    """Publish (or update) a record atomically: readers never see half a file."""
    directory = base or runtime_dir(create=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = record_path(record.id, directory)
    fd, tmp = tempfile.mkstemp(prefix=f".{record.id}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(record.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def remove_record(board_id: str, base: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(board_id, base).unlink()


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def list_sim_boards(base: Path | None = None, prune: bool = True) -> list[SimBoardRecord]:
    """Records of boards whose process is alive; stale records are removed when ``prune``."""
    directory = base or runtime_dir()
    if not directory.is_dir():
        return []
    boards = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            record = SimBoardRecord(**data)
        except (OSError, ValueError, TypeError) as exc:
            log.debug("ignoring unreadable sim record %s: %s", path, exc)
            continue
        if not pid_alive(record.pid):
            if prune:
                with contextlib.suppress(OSError):
                    path.unlink()
            continue
        boards.append(record)
    return boards
