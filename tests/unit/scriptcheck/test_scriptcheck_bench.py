"""The script-check benchmark runs in quick mode and reports its keys (numbers not judged)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_scriptcheck.py"


def test_scriptcheck_bench_quick_reports_keys(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_scriptcheck", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    for key in (
        "inputs",
        "ours_1thread_inputs_per_s",
        "ours_2threads_inputs_per_s",
        "speedup_2_vs_1_threads",
        "control_speedup_2_vs_1_processes",
        "pbk_objects_1thread_inputs_per_s",
        "build_ms_per_mb_ours",
        "build_ms_per_mb_pbk_objects",
    ):
        assert key in result
    assert result["inputs"] == 240 and result["ours_1thread_inputs_per_s"] > 0
