"""`blvm sim` argument handling and errors that say what to do."""

from __future__ import annotations

import json

import pytest

from appliance.cli import main
from appliance.cli.sim import ticket_difficulty_setting


def test_ticket_difficulty_setting():
    assert ticket_difficulty_setting("off", 1e5) is None
    assert ticket_difficulty_setting("auto", 2**32) == 1.0
    assert ticket_difficulty_setting("0.001", 1e5) == 0.001
    with pytest.raises(ValueError):
        ticket_difficulty_setting("-1", 1e5)


def test_list_with_no_boards(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BLVM_SIM_RUNTIME_DIR", str(tmp_path))
    assert main(["sim", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"boards": []}


def test_fault_without_board_explains(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BLVM_SIM_RUNTIME_DIR", str(tmp_path))
    assert main(["sim", "fault", "fan-stall"]) == 1
    assert "start one with `blvm sim`" in capsys.readouterr().out


def test_unknown_fault_rejected_by_parser(capsys):
    with pytest.raises(SystemExit):
        main(["sim", "fault", "gremlins"])
