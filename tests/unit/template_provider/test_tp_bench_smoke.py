"""CI exercise of tests/bench/bench_template_provider.py (tiny sizes; numbers not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_template_provider.py"


def test_tp_bench_quick_runs(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_template_provider", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--txs", "10", "--rounds", "1"])
    assert result["template_txs"] == 11
    for key in (
        "tip_to_prev_hash_ms",
        "fee_update_ms",
        "request_transactions_ms",
        "solution_to_next_work_ms",
        "empty_first_tip_to_prev_hash_ms",
        "empty_first_tip_to_full_template_ms",
    ):
        assert result[key] > 0, key
    assert capsys.readouterr().out.strip().startswith("{")
