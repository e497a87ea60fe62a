"""The USB bench runs in quick mode and reports its keys (keeps the script working in CI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_usb.py"


def test_usb_bench_quick_mode_reports_numbers(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_usb", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick"])
    for key in (
        "chip_id_roundtrip_ms_median",
        "chip_id_roundtrip_ms_p95",
        "job_write_per_s",
        "strip_mb_per_s",
        "divisor_encodings_per_s",
    ):
        assert result[key] > 0, key
    assert capsys.readouterr().out.strip().startswith("{")
