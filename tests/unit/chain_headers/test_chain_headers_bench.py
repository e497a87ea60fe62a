"""The header benchmark runs in quick mode and reports its keys (numbers not judged)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_headers.py"


def test_chain_headers_bench_quick_reports_keys() -> None:
    spec = importlib.util.spec_from_file_location("bench_headers", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick"])
    assert result["headers"] == 2016
    assert result["headers_per_s"] > 0 and result["headers_per_s_from_hex"] > 0
