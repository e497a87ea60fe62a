"""`blvm chain check-headers` and `blvm chain decode-block` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main
from node.chain import params as P
from protocols.bitcoin.block import Block
from protocols.bitcoin.hashes import hash_to_hex, sha256d
from tests.helpers import mainnet_alt

MAINNET_ALT_TIP = "000000000c806553811fd3e6c40bc9c279db53643da7d3b401a9882c074c24b2"


@pytest.fixture(scope="module")
def alt_headers(core_vectors: Path) -> list[bytes]:
    return mainnet_alt.headers(core_vectors, P.MAINNET.genesis_hash)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_chain_cli_check_headers_hex_file(tmp_path: Path, alt_headers, capsys) -> None:
    path = tmp_path / "headers.txt"
    path.write_text("\n".join(h.hex() for h in alt_headers) + "\n")
    code, result = _run(capsys, "chain", "check-headers", "--chain", "mainnet", str(path), "--json")
    assert code == 0
    assert result == {
        "count": 2016,
        "height": 2016,
        "tip": MAINNET_ALT_TIP,
        "chainwork": f"{0x7E407E407E4:064x}",
    }


def test_chain_cli_check_headers_raw_with_genesis(tmp_path: Path, alt_headers, capsys) -> None:
    path = tmp_path / "headers.bin"
    path.write_bytes(P.MAINNET.genesis_bytes[:80] + b"".join(alt_headers))
    code, result = _run(capsys, "chain", "check-headers", str(path), "--json", "--quiet")
    assert code == 0 and result["count"] == 2017 and result["tip"] == MAINNET_ALT_TIP


@pytest.mark.parametrize(("height", "offset"), [(1000, 68), (2016, 76)])
def test_chain_cli_check_headers_tampered(
    tmp_path: Path, alt_headers, capsys, height: int, offset: int
) -> None:
    headers = list(alt_headers)
    raw = bytearray(headers[height - 1])
    raw[offset] ^= 0x01
    headers[height - 1] = bytes(raw)
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(h.hex() for h in headers))
    code, result = _run(capsys, "chain", "check-headers", str(path), "--json")
    assert code == 1
    assert result == {"height": height, "reason": "high-hash", "hash": hash_to_hex(sha256d(raw))}


def test_chain_cli_check_headers_wrong_chain_and_gap(tmp_path: Path, alt_headers, capsys) -> None:
    path = tmp_path / "h.txt"
    path.write_text("\n".join(h.hex() for h in alt_headers[:10]))
    code, result = _run(
        capsys, "chain", "check-headers", "--chain", "testnet4", str(path), "--json"
    )
    assert code == 1 and result["reason"] == "prev-blk-not-found" and result["height"] == 1
    path.write_text("\n".join(h.hex() for h in alt_headers[1:10]))  # block 1 missing
    code, result = _run(capsys, "chain", "check-headers", str(path), "--json")
    assert code == 1 and result["reason"] == "prev-blk-not-found"
    assert result["hash"] == hash_to_hex(sha256d(alt_headers[1]))


def test_chain_cli_check_headers_regtest_fixture(
    tmp_path: Path, core_vectors: Path, capsys
) -> None:
    blocks = (core_vectors / "regtest_blocks_1_206.txt").read_text().split()
    path = tmp_path / "regtest.txt"
    path.write_text("\n".join(b[:160] for b in blocks))
    code, result = _run(capsys, "chain", "check-headers", "--chain", "regtest", str(path), "--json")
    assert code == 0 and result["count"] == 206 and result["height"] == 206
    assert result["tip"] == Block.from_hex(blocks[-1]).hash_hex


def test_chain_cli_check_headers_unreadable_input(tmp_path: Path, capsys) -> None:
    path = tmp_path / "odd.bin"
    path.write_bytes(b"\xff" * 81)
    code, result = _run(capsys, "chain", "check-headers", str(path), "--json")
    assert code == 2 and "multiple of 80" in result["error"]
    path.write_text("00" * 79)
    code, result = _run(capsys, "chain", "check-headers", str(path), "--json")
    assert code == 2 and "79 bytes" in result["error"]
    code, result = _run(capsys, "chain", "check-headers", str(tmp_path / "missing"), "--json")
    assert code == 2


def test_chain_cli_decode_block_mainnet_raw(core_vectors: Path, capsys) -> None:
    code, result = _run(
        capsys, "chain", "decode-block", str(core_vectors / "block413567.raw"), "--json"
    )
    assert code == 0
    assert result == {
        "hash": "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069",
        "size": 999887,
        "weight": 3999548,
        "tx_count": 1557,
        "merkle": "ok",
        "witness_commitment": "not-required",
    }


def _write_block(tmp_path: Path, block: Block, name: str) -> str:
    path = tmp_path / name
    path.write_text(block.serialize().hex())
    return str(path)


def test_chain_cli_decode_block_statuses(tmp_path: Path, core_vectors: Path, capsys) -> None:
    lines = (core_vectors / "regtest_blocks_1_206.txt").read_text().split()
    witness_block = next(
        b for b in map(Block.from_hex, lines) if any(t.has_witness() for t in b.txs[1:])
    )
    code, result = _run(
        capsys, "chain", "decode-block", _write_block(tmp_path, witness_block, "a"), "--json"
    )
    assert (code, result["merkle"], result["witness_commitment"]) == (0, "ok", "ok")
    assert result["weight"] < 4 * result["size"]

    # wrong merkle root in the header
    bad = Block.from_hex(witness_block.serialize().hex())
    bad.header.merkle_root = b"\x00" * 32
    _, result = _run(capsys, "chain", "decode-block", _write_block(tmp_path, bad, "b"), "--json")
    assert result["merkle"] == "mismatch"

    # CVE-2012-2459: an odd list with its last transaction repeated keeps the root
    mutated = Block.from_bytes((core_vectors / "block413567.raw").read_bytes())
    assert len(mutated.txs) % 2 == 1
    mutated.txs.append(mutated.txs[-1])
    _, result = _run(
        capsys, "chain", "decode-block", _write_block(tmp_path, mutated, "c"), "--json"
    )
    assert result["merkle"] == "mutated"

    # commitment altered / removed while witnesses remain
    cb = Block.from_hex(witness_block.serialize().hex())
    coinbase = cb.txs[0]
    idx = next(
        i for i, o in enumerate(coinbase.outputs) if o.script_pubkey[:6].hex() == "6a24aa21a9ed"
    )
    spk = bytearray(coinbase.outputs[idx].script_pubkey)
    spk[10] ^= 1
    coinbase.outputs[idx].script_pubkey = bytes(spk)
    coinbase.invalidate()
    _, result = _run(capsys, "chain", "decode-block", _write_block(tmp_path, cb, "d"), "--json")
    assert result["witness_commitment"] == "mismatch"
    del coinbase.outputs[idx]
    coinbase.invalidate()
    _, result = _run(capsys, "chain", "decode-block", _write_block(tmp_path, cb, "e"), "--json")
    assert result["witness_commitment"] == "absent"


def test_chain_cli_decode_block_garbage(tmp_path: Path, capsys) -> None:
    path = tmp_path / "junk.hex"
    path.write_text("00" * 90)
    code, result = _run(capsys, "chain", "decode-block", str(path), "--json")
    assert code == 2 and "decode failed" in result["error"]


def test_chain_cli_subprocess_human_output(tmp_path: Path, alt_headers) -> None:
    path = tmp_path / "headers.txt"
    path.write_text("\n".join(h.hex() for h in alt_headers[:50]))
    blvm = Path(sys.executable).parent / "blvm"
    proc = subprocess.run(
        [str(blvm), "chain", "check-headers", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("valid: 50 headers, tip ")
    help_proc = subprocess.run(
        [str(blvm), "chain", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert "check-headers" in help_proc.stdout and "decode-block" in help_proc.stdout
