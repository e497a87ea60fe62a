"""CI smoke run of the Stratum V1 codec benchmark (numbers are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sv1_codec.py"


def test_bench_sv1_codec_quick(capsys):
    spec = importlib.util.spec_from_file_location("bench_sv1_codec", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--n", "200"])
    for key in (
        "submit_parse_per_second",
        "submit_parse_check_reply_per_second",
        "notify_encode_per_second",
        "share_validate_per_second",
    ):
        assert result[key] > 0
    assert '"notify_encode_per_second"' in capsys.readouterr().out
