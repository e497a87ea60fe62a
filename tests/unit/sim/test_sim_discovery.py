"""Discovery records: atomic, listed while the board lives, pruned when stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from drivers.sim.discovery import (
    SimBoardRecord,
    list_sim_boards,
    remove_record,
    runtime_dir,
    write_record,
)


def record(pid: int, board_id: str = "b1") -> SimBoardRecord:
    return SimBoardRecord(id=board_id, port="/dev/pts/99", model="BM1370", chips=4, pid=pid)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_write_list_remove(tmp_path):
    path = write_record(record(os.getpid()), tmp_path)
    assert json.loads(path.read_text())["port"] == "/dev/pts/99"
    assert [p.name for p in tmp_path.iterdir()] == ["b1.json"]  # no temp files left
    assert list_sim_boards(tmp_path) == [record(os.getpid())]
    remove_record("b1", tmp_path)
    assert list_sim_boards(tmp_path) == []


def test_stale_and_broken_records_are_dropped(tmp_path):
    write_record(record(os.getpid(), "alive"), tmp_path)
    write_record(record(dead_pid(), "stale"), tmp_path)
    (tmp_path / "junk.json").write_text("{not json")
    boards = list_sim_boards(tmp_path)
    assert [b.id for b in boards] == ["alive"]
    assert not (tmp_path / "stale.json").exists()


def test_update_replaces_record(tmp_path):
    write_record(record(os.getpid()), tmp_path)
    moved = SimBoardRecord(id="b1", port="/dev/pts/100", model="BM1370", chips=4, pid=os.getpid())
    write_record(moved, tmp_path)
    assert list_sim_boards(tmp_path)[0].port == "/dev/pts/100"


def test_runtime_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("BLVM_SIM_RUNTIME_DIR", str(tmp_path / "explicit"))
    assert runtime_dir(create=True) == tmp_path / "explicit"
    assert (tmp_path / "explicit").stat().st_mode & 0o777 == 0o700
    monkeypatch.delenv("BLVM_SIM_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert runtime_dir() == tmp_path / "blvm-sim"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert runtime_dir().name == f"blvm-sim-{os.getuid()}"
