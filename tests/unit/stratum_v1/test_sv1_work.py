"""Job arithmetic against real blocks: notify fields → coinbase → merkle root → header → hash."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from protocols.stratum_v1 import ClientConnection, Notify, Submit, Subscribe, share_header
from protocols.stratum_v1.work import (
    BIP320_VERSION_MASK,
    DIFF1_TARGET,
    apply_version_bits,
    bits_to_target,
    build_coinbase,
    build_header,
    difficulty_to_target,
    hash_difficulty,
    hash_to_display,
    merkle_branch_for_coinbase,
    merkle_root_from_branch,
    negotiate_version_mask,
    sha256d,
    swap_words,
    target_to_difficulty,
    version_bits_allowed,
)

# Block 413567's prevhash as a pool sends it in mining.notify: derived by hand from the
# display hash 00000000000000000542b54d29b12b523ff6c6474e0e86085bd3005ec6c5ce11 by
# reversing the order of its eight 4-byte words.
STRATUM_PREVHASH_413567 = "c6c5ce115bd3005e4e0e86083ff6c64729b12b520542b54d0000000000000000"

GENESIS_COINBASE = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04"
    "ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e20"
    "6272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01"
    "000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4c"
    "ef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
)


def _subscribed_client(en1: bytes, en2_size: int) -> ClientConnection:
    client = ClientConnection()
    client.send(Subscribe())
    reply = {
        "id": 1,
        "result": [[["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], en1.hex(), en2_size],
        "error": None,
    }
    client.receive_data(json.dumps(reply).encode() + b"\n")
    return client


def test_genesis_header_from_notify_style_fields():
    en1, en2 = GENESIS_COINBASE[42:46], GENESIS_COINBASE[46:50]
    coinbase = build_coinbase(GENESIS_COINBASE[:42], en1, en2, GENESIS_COINBASE[50:])
    assert coinbase == GENESIS_COINBASE
    root = merkle_root_from_branch(sha256d(coinbase), [])
    assert hash_to_display(root) == (
        "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    )
    header = build_header(1, bytes(32), root, 1231006505, 0x1D00FFFF, 2083236893)
    assert hash_to_display(sha256d(header)) == (
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    )


def test_block_413567_rebuilt_from_a_notify_line(block_413567):
    blk = block_413567
    off = blk.script_sig_offset
    assert blk.coinbase[off - 1] >= 12  # scriptSig long enough to hold en1 + en2
    coinb1, en1 = blk.coinbase[: off + 4], blk.coinbase[off + 4 : off + 8]
    en2, coinb2 = blk.coinbase[off + 8 : off + 12], blk.coinbase[off + 12 :]
    branch = merkle_branch_for_coinbase(blk.txids)
    assert len(branch) == (len(blk.txids) - 1).bit_length()

    # the line a pool would send; fields hand-read from the raw header
    # (version 04000000 → 00000004, time b38d4757 → 57478db3, bits 36840518 → 18058436)
    line = (
        json.dumps(
            {
                "id": None,
                "method": "mining.notify",
                "params": [
                    "413567",
                    STRATUM_PREVHASH_413567,
                    coinb1.hex(),
                    coinb2.hex(),
                    [h.hex() for h in branch],
                    "00000004",
                    "18058436",
                    "57478db3",
                    True,
                ],
            }
        ).encode()
        + b"\n"
    )
    client = _subscribed_client(en1, 4)
    [notify] = client.receive_data(line)
    assert isinstance(notify, Notify)
    assert notify.prevhash == blk.header[4:36]
    assert swap_words(bytes.fromhex(STRATUM_PREVHASH_413567)) == blk.header[4:36]

    submit = Submit("w", "413567", en2, 0x57478DB3, 0x7E5FB903)  # nonce 03b95f7e LE
    header = share_header(notify, client.extranonce1, submit, 0)
    assert header[36:68] == blk.header[36:68]  # merkle root from the branch
    assert header == blk.header
    digest = sha256d(header)
    assert hash_to_display(digest) == blk.block_hash_hex
    assert int.from_bytes(digest, "little") <= bits_to_target(notify.nbits)
    assert hash_difficulty(digest) >= target_to_difficulty(bits_to_target(0x18058436))


def test_merkle_branch_matches_full_tree_for_every_size():
    for n in range(1, 40):
        txids = [sha256d(bytes([i, n])) for i in range(n)]
        level = list(txids)
        while len(level) > 1:
            if len(level) % 2:
                level.append(level[-1])
            level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        assert merkle_root_from_branch(txids[0], merkle_branch_for_coinbase(txids)) == level[0]


def test_difficulty_one_target():
    assert int("00000000ffff" + "00" * 26, 16) == DIFF1_TARGET
    assert difficulty_to_target(1) == DIFF1_TARGET
    assert target_to_difficulty(DIFF1_TARGET) == 1.0
    assert bits_to_target(0x1D00FFFF) == DIFF1_TARGET


def test_difficulty_target_conversions():
    # Bitcoin wiki's worked example: bits 0x1b0404cb is difficulty 16307.420938523983
    assert target_to_difficulty(bits_to_target(0x1B0404CB)) == pytest.approx(
        16307.420938523983, rel=1e-15
    )
    assert difficulty_to_target(2) == DIFF1_TARGET // 2
    assert difficulty_to_target(0.5) == DIFF1_TARGET * 2
    assert difficulty_to_target(Fraction(1, 3)) == DIFF1_TARGET * 3
    assert difficulty_to_target(1e-300) == (1 << 256) - 1  # clamped
    for d in (1, 8, 512, 65536.0, 1e12, 0.001):
        assert target_to_difficulty(difficulty_to_target(d)) == pytest.approx(d, rel=1e-9)
    with pytest.raises(ValueError):
        difficulty_to_target(0)


def test_bits_to_target_edge_forms():
    assert bits_to_target(0x01003456) == 0
    assert bits_to_target(0x02008000) == 0x80
    assert bits_to_target(0x04923456) == 0  # sign bit set
    assert bits_to_target(0x05009234) == 0x92340000
    assert bits_to_target(0xFF123456) == 0  # overflow


def test_version_rolling():
    assert negotiate_version_mask(0x1FFFE000, 0x00FFF000) == 0x00FFE000
    assert negotiate_version_mask(0x1FFFE000, 0xFFFFFFFF) == BIP320_VERSION_MASK
    # miner bits land inside the mask only
    assert apply_version_bits(0x20000000, 0x00006000, 0x1FFFE000) == 0x20006000
    assert apply_version_bits(0x20000000, 0xE0006000, 0x1FFFE000) == 0x20006000
    assert apply_version_bits(0x20000004, None, 0x1FFFE000) == 0x20000004
    # a job bit inside the mask may be cleared by the miner
    assert apply_version_bits(0x20002000, 0x00000000, 0x1FFFE000) == 0x20000000
    assert version_bits_allowed(0x00006000, 0x1FFFE000)
    assert not version_bits_allowed(0x00000001, 0x1FFFE000)
    # full rolled version (job bits outside the mask unchanged) is accepted with the job
    assert version_bits_allowed(0x20006000, 0x1FFFE000, job_version=0x20000000)
    assert not version_bits_allowed(0x60006000, 0x1FFFE000, job_version=0x20000000)


def test_swap_words_is_an_involution():
    data = bytes(range(32))
    assert swap_words(swap_words(data)) == data
    assert swap_words(bytes.fromhex("00010203")) == bytes.fromhex("03020100")
    with pytest.raises(ValueError):
        swap_words(b"abc")
