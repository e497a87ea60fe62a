"""The parse benchmark runs in quick mode and reports its keys (numbers are not judged here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_parse.py"


def test_bench_parse_quick(capsys):
    spec = importlib.util.spec_from_file_location("bench_parse", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--iterations", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == result
    for key in (
        "parse_ms_min",
        "parse_ms_median",
        "parse_cpu_ms_min",
        "tx_per_s",
        "txid_merkle_ms_min",
        "merkle_only_ms_min",
        "pbk_block_ms_min",
        "regtest_206_blocks_parse_ms",
    ):
        assert key in result
    assert result["txs"] == 1557 and result["inputs"] > result["txs"]
