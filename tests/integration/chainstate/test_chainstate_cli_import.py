"""`blvm chain import`: formats, invalid-block report, prune flag errors."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from appliance.cli import main as cli_main
from protocols.bitcoin.block import Block
from tests.unit.chainstate.blocktools import fixture_blocks


def _run(*args: str) -> tuple[int, dict | str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(["chain", "import", "--chain", "regtest", "-q", *args])
    text = buf.getvalue()
    try:
        return rc, json.loads(text)
    except json.JSONDecodeError:
        return rc, text


@pytest.fixture(scope="module")
def fixture_raw(core_vectors: Path) -> list[bytes]:
    return [b.serialize() for b in fixture_blocks(core_vectors)]


def test_hex_file(core_vectors: Path, tmp_path: Path):
    rc, out = _run(
        "--datadir", str(tmp_path / "d"), "--json", str(core_vectors / "regtest_blocks_1_206.txt")
    )
    assert rc == 0
    assert out["height"] == 206
    assert out["tip"] == "3de082158b117acd088306c395d09771bb7cbf0b7355796c1b1e0bd748ef9bed"
    assert (out["utxos"], out["total_amount"]) == (230, 887_500_000_000)
    # importing again: all duplicates, same answer
    rc, again = _run(
        "--datadir", str(tmp_path / "d"), "--json", str(core_vectors / "regtest_blocks_1_206.txt")
    )
    assert rc == 0 and again["duplicates"] == 206 and again["tip"] == out["tip"]


def test_raw_concatenated_and_framed_files(fixture_raw, tmp_path: Path):
    raw_file = tmp_path / "blocks.bin"
    raw_file.write_bytes(b"".join(fixture_raw[:100]))
    framed = tmp_path / "blk.dat"
    magic = bytes.fromhex("fabfb5da")
    framed.write_bytes(
        b"".join(magic + len(b).to_bytes(4, "little") + b for b in fixture_raw[100:]) + bytes(64)
    )
    rc, out = _run("--datadir", str(tmp_path / "d"), "--json", str(raw_file), str(framed))
    assert rc == 0 and out["height"] == 206 and out["utxos"] == 230


def test_invalid_block_reported_and_nothing_after_it_connected(fixture_raw, tmp_path: Path):
    bad = Block.from_bytes(fixture_raw[50])
    bad.header.merkle_root = bytes(32)
    from tests.unit.chainstate.blocktools import solve

    bad = solve(bad, fix_merkle=False)
    lines = (
        [b.hex() for b in fixture_raw[:50]]
        + [bad.serialize().hex()]
        + [b.hex() for b in fixture_raw[51:]]
    )
    f = tmp_path / "bad.txt"
    f.write_text("\n".join(lines))
    rc, out = _run("--datadir", str(tmp_path / "d"), "--json", str(f))
    assert rc == 1
    assert out["height"] == 50
    assert out["invalid"]["height"] == 51
    assert out["invalid"]["reason"] == "bad-txnmrklroot"
    assert out["invalid"]["hash"] == bad.hash_hex
    assert out["invalid"]["block_number"] == 51


def test_garbage_file_and_prune_errors(tmp_path: Path, core_vectors: Path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x01\x02\x03" * 50)
    rc, out = _run("--datadir", str(tmp_path / "d"), "--json", str(junk))
    assert rc == 2 and "cannot parse block" in out["error"]
    fixture = str(core_vectors / "regtest_blocks_1_206.txt")
    rc, out = _run("--datadir", str(tmp_path / "e"), "--json", "--prune", "100", fixture)
    assert rc == 2 and "550" in out["error"]
    rc, out = _run("--datadir", str(tmp_path / "f"), "--json", "--prune", "550", fixture)
    assert rc == 0 and out["prune"]["pruned"] is True and out["height"] == 206


def test_wrong_chain_datadir(tmp_path: Path, core_vectors: Path):
    fixture = str(core_vectors / "regtest_blocks_1_206.txt")
    assert _run("--datadir", str(tmp_path / "d"), "--json", fixture)[0] == 0
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(
            [
                "chain",
                "import",
                "--chain",
                "signet",
                "--datadir",
                str(tmp_path / "d"),
                "--json",
                fixture,
            ]
        )
    assert rc == 2 and "regtest chain" in json.loads(buf.getvalue())["error"]


def test_out_of_order_blocks_are_held_until_their_parent(fixture_raw, tmp_path: Path):
    import random

    order = list(fixture_raw)
    rng = random.Random(7)
    for start in range(0, len(order), 20):  # shuffle within windows, like Core's blk files
        window = order[start : start + 20]
        rng.shuffle(window)
        order[start : start + 20] = window
    f = tmp_path / "shuffled.bin"
    f.write_bytes(b"".join(order))
    rc, out = _run("--datadir", str(tmp_path / "d"), "--json", str(f))
    assert rc == 0 and out["height"] == 206 and out["orphans"] == 0
    assert out["utxos"] == 230


def test_missing_block_leaves_orphans_reported(fixture_raw, tmp_path: Path):
    f = tmp_path / "gap.txt"
    f.write_text("\n".join(b.hex() for b in fixture_raw[:99] + fixture_raw[100:]))
    rc, out = _run("--datadir", str(tmp_path / "d"), "--json", str(f))
    assert rc == 1
    assert out["height"] == 99 and out["orphans"] == 106
    assert out["invalid"]["reason"] == "prev-blk-not-found"
    assert out["invalid"]["block_number"] == 100  # the first block after the gap
