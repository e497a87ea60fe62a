"""Crash safety for real: `blvm chain import` killed with SIGKILL at random moments.

After every kill the datadir must open at a consistent block boundary; after the final
uninterrupted run the tip and the UTXO-set digest must equal those of a run that was
never interrupted.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.chain.chainstate import Chainstate
from node.chain.params import REGTEST
from protocols.bitcoin.block import Block
from tests.unit.chainstate.blocktools import build_chain, churn_chain, fixture_blocks, tip_of

IMPORT = "import sys; from appliance.cli import main; sys.exit(main())"


def _import_cmd(datadir: Path, chain_file: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        IMPORT,
        "chain",
        "import",
        "--chain",
        "regtest",
        "--datadir",
        str(datadir),
        "--json",
        "-q",
        "--script-threads",
        "1",
        str(chain_file),
        *extra,
    ]


@pytest.fixture(scope="module")
def chain_file(core_vectors: Path, tmp_path_factory) -> Path:
    fx = [b.serialize() for b in fixture_blocks(core_vectors)]
    ext = fx + [b.serialize() for b in build_chain(tip_of(Block.from_bytes(fx[-1]), 206), 110)]
    blocks = ext + [b.serialize() for b in churn_chain(ext, 120)]
    path = tmp_path_factory.mktemp("crash") / "chain.txt"
    path.write_text("\n".join(raw.hex() for raw in blocks) + "\n")
    return path


def _state(datadir: Path) -> tuple[int, bytes, str]:
    cs = Chainstate.open(datadir, REGTEST, script_threads=1)
    try:
        stats = cs.utxo_stats()
        return cs.height, cs.tip.hash, stats.digest
    finally:
        cs.close()


@pytest.mark.slow
def test_sigkill_during_import_then_resume_matches_uninterrupted(chain_file, tmp_path):
    ref_dir = tmp_path / "ref"
    done = subprocess.run(_import_cmd(ref_dir, chain_file), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ref_out = json.loads(done.stdout)
    assert ref_out["height"] == 436
    ref = _state(ref_dir)
    ref_bytes = (ref_dir / "blocks" / "blk00000.dat").stat().st_size

    rng = random.Random(20261125)
    crash_dir = tmp_path / "crashy"
    blk = crash_dir / "blocks" / "blk00000.dat"
    heights = []
    for _ in range(8):
        start_size = blk.stat().st_size if blk.exists() else 0
        # Kill once this run has appended a random share of the chain's bytes: a point
        # in the work, whatever the machine's speed. Every block is flushed, so kills
        # land in block writes, undo writes, fsyncs and LMDB commits alike.
        kill_at = start_size + rng.uniform(0.05, 0.3) * ref_bytes
        proc = subprocess.Popen(
            _import_cmd(crash_dir, chain_file, "--flush-interval", "0"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and (blk.stat().st_size if blk.exists() else 0) < kill_at:
            assert time.monotonic() < deadline, "import made no progress"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        height, tip, _digest = _state(crash_dir)  # opens cleanly at some block boundary
        heights.append(height)
        cs = Chainstate.open(crash_dir, REGTEST, script_threads=1)
        try:
            assert cs.block_hash_at(height) == tip
        finally:
            cs.close()
    assert heights, "no kill landed after the datadir was created"
    assert len(set(heights)) >= 3 and min(heights) < 436, f"kills landed at {heights}"
    final = subprocess.run(_import_cmd(crash_dir, chain_file), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    out = json.loads(final.stdout)
    assert (out["height"], out["tip"], out["utxos"], out["total_amount"]) == (
        ref_out["height"],
        ref_out["tip"],
        ref_out["utxos"],
        ref_out["total_amount"],
    )
    assert _state(crash_dir) == ref
