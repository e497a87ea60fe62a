"""The mempool benchmark runs at its smallest size and reports its keys (numbers not judged)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_mempool.py"


def test_mempool_bench_quick_reports_keys(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_mempool", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--txs", "40", "--rounds", "2"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    for key in (
        "txs",
        "sign_tx_per_s",
        "accept_tx_per_s",
        "accept_us_per_tx",
        "mempool_vbytes",
        "template_build_ms",
        "template_build_max_ms",
        "template_cached_ms",
        "template_txs",
        "template_weight",
        "block_connect_and_mempool_update_ms",
        "mempool_block_update_ms",
        "mempool_after_block",
        "accept_full_pool_tx_per_s",
        "full_pool_size",
        "full_pool_rejected",
        "full_pool_minfee_sat_per_kvb",
    ):
        assert key in result, key
    assert result["txs"] == 40 and result["template_txs"] == 40
    assert result["mempool_after_block"] == 0 and result["accept_tx_per_s"] > 0
