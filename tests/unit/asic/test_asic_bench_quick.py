"""CI smoke run of tests/bench/bench_asic.py (quick mode, smallest size)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_asic.py"


def test_bench_asic_quick_prints_json(capsys):
    spec = importlib.util.spec_from_file_location("bench_asic", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--size", "500"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    for key in (
        "decode_frames_per_s",
        "encode_header_job_frames_per_s",
        "encode_midstate_job_frames_per_s",
        "encode_nonce_reply_frames_per_s",
        "verify_rehash_nonces_per_s",
        "verify_driver_path_nonces_per_s",
        "new_block_to_write_BM1370_memory_median_us",
        "new_block_to_write_BM1397_memory_median_us",
        "new_block_to_write_BM1370_pty_written_median_us",
    ):
        assert printed[key] > 0, key
