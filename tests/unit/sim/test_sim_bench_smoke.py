"""CI runs the sim benchmark's main in its smallest mode and checks the keys."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sim.py"


def test_bench_sim_quick_keys():
    spec = importlib.util.spec_from_file_location("bench_sim", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--seconds", "0.2"])
    for key in (
        "header_scanner_hashes_per_s",
        "midstate_scanner_hashes_per_s",
        "midstate_scanner_pure_python_hashes_per_s",
        "pty_board_idle_cpu_fraction",
        "pty_board_busy_cpu_fraction_cap_0_5",
        "pty_board_busy_real_hashes_per_s",
        "pty_board_register_read_rtt_ms_median",
    ):
        assert key in result
    assert result["header_scanner_hashes_per_s"] > 0
