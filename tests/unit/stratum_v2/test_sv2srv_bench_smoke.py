"""CI exercise of tests/bench/bench_sv2_server.py (tiny sizes; the numbers are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sv2_server.py"


def test_sv2_server_bench_quick_runs(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_sv2_server", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--clients", "3", "--shares", "5"])
    assert result["shares_validated"] == 15 and result["share_errors"] == 0
    assert result["channels_with_clean_job"] == 3
    for key in ("shares_per_s", "new_template_to_last_channel_ms", "connect_all_s"):
        assert result[key] > 0, key
    assert capsys.readouterr().out.strip().startswith("{")
