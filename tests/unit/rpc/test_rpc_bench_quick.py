"""The RPC benchmark runs at its smallest size and reports its keys (numbers not judged)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_rpc.py"


def test_rpc_bench_quick_reports_keys(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_rpc", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--txs", "30", "--rounds", "3", "--seconds", "0.3"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    for key in (
        "to_gbt_ms_median",
        "to_gbt_ms_p95",
        "gbt_rpc_cached_ms_median",
        "gbt_rpc_cached_ms_p95",
        "gbt_rpc_fresh_ms_median",
        "gbt_rpc_fresh_ms_p95",
        "gbt_longpoll_wake_ms_median",
        "gbt_longpoll_wake_ms_max",
        "getblockcount_calls_per_s_1_client",
        "getblockcount_calls_per_s_4_clients",
    ):
        assert key in result, key
    assert result["mempool_txs"] == 30 and result["template_txs"] == 30
    assert result["getblockcount_calls_per_s_1_client"] > 0
