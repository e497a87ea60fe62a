"""CI exercise of tests/bench/bench_sv2_codec.py (tiny sizes; the numbers are not checked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sv2_codec.py"


def test_sv2_bench_quick_runs(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_sv2_codec", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--iterations", "200"])
    for key in (
        "submit_shares_standard_decode_per_s",
        "submit_shares_standard_encode_per_s",
        "submit_shares_extended_decode_per_s",
        "new_mining_job_decode_per_s",
        "handshake_ms",
        "transport_encrypt_MB_per_s",
        "transport_decrypt_MB_per_s",
    ):
        assert result[key] > 0, key
    assert capsys.readouterr().out.strip().startswith("{")
