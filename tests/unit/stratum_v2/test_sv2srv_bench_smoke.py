"""CI exercise of tests/bench/bench_sv2_server.py (tiny sizes; the numbers are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sv2_server.py"
OURS = ("sv2", "sv1", "sv2_workers", "sv1_workers")
KEYS = (
    "shares_acked_per_s",
    "shares_validated_per_s",
    "new_template_to_last_channel_ms",
    "connect_all_s",
)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_sv2_server", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_ours(result: dict, clients: int, shares: int) -> None:
    for kind in OURS:
        side = result[kind]
        assert side["shares_validated"] == clients * shares, kind
        assert side["shares_acked"] == clients * shares and side["share_errors"] == 0, kind
        assert side["channels_with_clean_job"] == clients, kind
        for key in KEYS:  # workers report counts, not a server-side rate
            assert (key == "shares_validated_per_s" and "workers" in kind) or side[key] > 0, key


def test_sv2_server_bench_quick_runs(capsys) -> None:
    """Ours (one process and workers, both protocols), and SRI next to them when it is built
    (else: said unmeasured)."""
    bench = _bench()
    result = bench.main(["--quick", "--clients", "3", "--shares", "5", "--rounds", "2"])
    _check_ours(result, 3, 5)
    assert result["rounds"] == 2
    assert result["sv2_workers"]["workers"] >= 2
    for kind in OURS:  # the median round is reported, every round's rate listed
        assert result[kind]["shares_acked_per_s"] in result[kind]["rounds_shares_acked_per_s"]
        assert len(result[kind]["rounds_shares_acked_per_s"]) == 2
    if result["sri"]["measured"]:
        for key in ("sri", "sri_sv1"):
            sri = result[key]
            assert sri["shares_acked"] == 15 and sri["share_errors"] == 0, key
            assert sri["channels_with_clean_job"] == 3, key
            assert sri["new_template_to_last_channel_ms"] > 0, key
        ratios = result["ratio_ours_to_sri"]
        assert set(ratios) == {*OURS, "sv1_vs_pool_sv2"} and all(ratios.values())
        assert set(result["goal_throughput_at_least_sri"]) == {"sv2", "sv1"}
        worst = result["ratio_ours_to_sri_worst_round"]
        assert set(worst) == set(OURS) and all(worst[k] > 0 for k in OURS)
        assert result["sri_sv1"]["merkle_branch_levels"] == result["sv1"]["merkle_branch_levels"]
    else:
        assert "pool_sv2" in result["sri"]["reason"]
    assert capsys.readouterr().out.strip().startswith("{")


def test_sv2_server_bench_missing_pool(monkeypatch, tmp_path) -> None:
    """No SRI roles: ours only and 'not measured'; with BLVM_REQUIRE_INTEROP=1, exit 2."""
    bench = _bench()
    monkeypatch.setattr(bench, "_sri_binary", lambda role="pool_sv2": tmp_path / role)
    monkeypatch.delenv("BLVM_REQUIRE_INTEROP", raising=False)
    result = bench.main(["--quick", "--clients", "2", "--shares", "3"])
    _check_ours(result, 2, 3)
    assert result["sri"]["measured"] is False and "ratio_ours_to_sri" not in result
    monkeypatch.setenv("BLVM_REQUIRE_INTEROP", "1")
    with pytest.raises(SystemExit) as exc:
        bench.main(["--quick", "--clients", "2", "--shares", "3"])
    assert exc.value.code == 2
