"""Transactions and blocks: round trips on real chains, identities against the kernel,
merkle roots and mutation, malformed input, compact sizes, nBits."""

from __future__ import annotations

import random

import pbk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.compact import compact_size, read_compact_size
from protocols.bitcoin.errors import DecodeError
from protocols.bitcoin.hashes import hash_to_hex, sha256d
from protocols.bitcoin.merkle import merkle_branch, merkle_root, root_from_branch
from protocols.bitcoin.pow import bits_to_target, block_work, hash_meets_target, target_to_bits
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut, outpoint


@pytest.fixture(scope="module")
def regtest_raw(core_vectors) -> list[bytes]:
    text = (core_vectors / "regtest_blocks_1_206.txt").read_text()
    return [bytes.fromhex(line) for line in text.split()]


@pytest.fixture(scope="module")
def big_raw(core_vectors) -> bytes:
    return (core_vectors / "block413567.raw").read_bytes()


def _witness_commitment(block: Block) -> bytes | None:
    for out in reversed(block.txs[0].outputs):
        spk = out.script_pubkey
        if len(spk) >= 38 and spk[:6] == bytes.fromhex("6a24aa21a9ed"):
            return spk[6:38]
    return None


def test_regtest_chain_round_trips_and_matches_kernel(regtest_raw):
    assert len(regtest_raw) == 206
    prev = None
    n_tx = 0
    for raw in regtest_raw:
        block = Block.from_bytes(raw)
        assert block.serialize() == raw
        assert block.size == len(raw)
        kblock = pbk.Block(raw)
        assert hash_to_hex(block.hash) == str(kblock.block_hash)
        if prev is not None:
            assert block.header.prev_hash == prev
        prev = block.hash
        ktxs = list(kblock.transactions)
        assert len(ktxs) == len(block.txs)
        for tx, ktx in zip(block.txs, ktxs, strict=True):
            assert tx.txid == bytes(ktx.txid)
            assert tx.locktime == ktx.locktime
            assert len(tx.inputs) == len(ktx.inputs) and len(tx.outputs) == len(ktx.outputs)
            # rebuilding from the fields gives the same bytes as the cached raw span
            stripped = tx.serialize_without_witness()
            tx.invalidate()
            assert tx.serialize() == raw[raw.find(tx.serialize()) :][: len(tx.serialize())]
            assert tx.serialize_without_witness() == stripped
            assert sha256d(stripped) == tx.txid
            assert tx.weight == len(stripped) * 3 + len(tx.serialize())
            assert tx.vsize == (tx.weight + 3) // 4
            n_tx += 1
        root, mutated = merkle_root([tx.txid for tx in block.txs])
        assert root == block.header.merkle_root and not mutated
        # the coinbase commits to the witness tree: this checks every wtxid
        commitment = _witness_commitment(block)
        if commitment is not None:
            wroot, _ = merkle_root([b"\x00" * 32] + [tx.wtxid for tx in block.txs[1:]])
            nonce = block.txs[0].inputs[0].witness[0]
            assert sha256d(wroot + nonce) == commitment
        assert block.weight == block.base_size * 3 + block.size
    assert n_tx == 231


def test_segwit_tx_identities(regtest_raw):
    witness_txs = [
        tx for raw in regtest_raw for tx in Block.from_bytes(raw).txs if tx.has_witness()
    ]
    assert witness_txs
    for tx in witness_txs:
        assert tx.txid != tx.wtxid
        assert tx.base_size < tx.total_size
        assert Tx.from_bytes(tx.serialize_without_witness()).txid == tx.txid
        assert Tx.from_bytes(tx.serialize()) == tx


def test_block_413567(big_raw):
    block = Block.from_bytes(big_raw)
    assert len(block.txs) == 1557
    assert block.serialize() == big_raw
    assert block.size == len(big_raw) and block.weight == 4 * len(big_raw)  # pre-segwit
    kblock = pbk.Block(big_raw)
    assert hash_to_hex(block.hash) == str(kblock.block_hash)
    assert [tx.txid for tx in block.txs] == [bytes(t.txid) for t in kblock.transactions]
    assert block.txs[0].is_coinbase() and not any(t.is_coinbase() for t in block.txs[1:])
    root, mutated = merkle_root([tx.txid for tx in block.txs])
    assert root == block.header.merkle_root and not mutated
    decoded = bits_to_target(block.header.bits)
    assert hash_meets_target(block.hash, decoded.target)
    assert not hash_meets_target(block.hash, decoded.target >> 40)


def test_mutated_merkle_detected(big_raw):
    block = Block.from_bytes(big_raw)
    txids = [tx.txid for tx in block.txs]
    assert len(txids) % 2 == 1
    # CVE-2012-2459: repeating the last tx of an odd list keeps the root but is mutated
    root, mutated = merkle_root([*txids, txids[-1]])
    assert root == block.header.merkle_root and mutated
    # repeating the last two of a list whose next level is odd likewise (6 → 8 leaves)
    even = txids[:-3]
    assert len(even) % 4 == 2
    root_even, m0 = merkle_root(even)
    root_dup, m1 = merkle_root([*even, even[-2], even[-1]])
    assert root_dup == root_even and not m0 and m1
    # a duplicate pair anywhere is flagged, even when the root differs
    assert merkle_root([txids[0], txids[0], txids[1]])[1]
    assert merkle_root([]) == (b"\x00" * 32, False)
    assert merkle_root([txids[0]]) == (txids[0], False)


def test_merkle_branch_round_trip(big_raw):
    txids = [tx.txid for tx in Block.from_bytes(big_raw).txs]
    root, _ = merkle_root(txids)
    for index in (0, 1, 2, 777, len(txids) - 1):
        branch = merkle_branch(txids, index)
        assert root_from_branch(txids[index], branch, index) == root


# -- malformed input -------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_tx_from_random_bytes_only_decode_error(data):
    try:
        tx = Tx.from_bytes(data)
    except DecodeError:
        return
    tx.invalidate()
    assert tx.serialize() == data  # anything accepted is canonical


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=80, max_size=600))
def test_block_from_random_bytes_only_decode_error(data):
    try:
        block = Block.from_bytes(data)
    except DecodeError:
        return
    assert block.serialize() == data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_segwit_tx_mutations_only_decode_error(regtest_raw, data):
    raw = regtest_raw[-1]
    block = Block.from_bytes(raw)
    tx_bytes = data.draw(st.sampled_from([tx.serialize() for tx in block.txs]))
    pos = data.draw(st.integers(0, len(tx_bytes) - 1))
    value = data.draw(st.integers(0, 255))
    mutated = tx_bytes[:pos] + bytes((value,)) + tx_bytes[pos + 1 :]
    cut = data.draw(st.integers(0, len(mutated)))
    for candidate in (mutated, mutated[:cut]):
        try:
            tx = Tx.from_bytes(candidate)
        except DecodeError:
            continue
        tx.invalidate()
        assert tx.serialize() == candidate


def test_real_block_truncations_and_flips(regtest_raw, big_raw):
    rng = random.Random(413567)
    samples = [big_raw, *rng.sample(regtest_raw, 20)]
    for raw in samples:
        for _ in range(15):
            cut = rng.randrange(len(raw))
            with pytest.raises(DecodeError):
                Block.from_bytes(raw[:cut])
        for _ in range(15):
            pos = rng.randrange(len(raw))
            flipped = raw[:pos] + bytes((raw[pos] ^ (1 << rng.randrange(8)),)) + raw[pos + 1 :]
            try:
                block = Block.from_bytes(flipped)
            except DecodeError:
                continue
            assert block.serialize() == flipped
    with pytest.raises(DecodeError, match="trailing"):
        Block.from_bytes(big_raw + b"\x00")
    with pytest.raises(DecodeError):
        Block.from_hex("zz")
    with pytest.raises(DecodeError):
        Block.from_bytes(bytearray(big_raw[:100]))


def _tx_with_counts(n_in_enc: bytes, script_len_enc: bytes) -> bytes:
    return (
        b"\x01\x00\x00\x00"
        + n_in_enc
        + b"\x11" * 36
        + script_len_enc
        + b"\x51"
        + b"\xff" * 4
        + b"\x01"
        + (1000).to_bytes(8, "little")
        + b"\x01\x51"
        + b"\x00" * 4
    )


def test_non_canonical_compact_sizes_rejected():
    assert Tx.from_bytes(_tx_with_counts(b"\x01", b"\x01"))
    for bad_count in (
        b"\xfd\x01\x00",
        b"\xfe\x01\x00\x00\x00",
        b"\xff" + (1).to_bytes(8, "little"),
    ):
        with pytest.raises(DecodeError, match="non-canonical"):
            Tx.from_bytes(_tx_with_counts(bad_count, b"\x01"))
        with pytest.raises(DecodeError, match="non-canonical"):
            Tx.from_bytes(_tx_with_counts(b"\x01", bad_count))
    with pytest.raises(DecodeError, match="non-canonical"):
        read_compact_size(b"\xfd\xfc\x00", 0)
    assert read_compact_size(b"\xfd\xfd\x00", 0) == (0xFD, 3)
    assert read_compact_size(b"\xfe\x00\x00\x01\x00", 0) == (0x10000, 5)
    with pytest.raises(DecodeError, match="too large"):
        read_compact_size(b"\xfe\x01\x00\x00\x02", 0)
    with pytest.raises(DecodeError, match="truncated"):
        read_compact_size(b"\xfd\x01", 0)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0x02000000))
def test_compact_size_round_trip(n):
    enc = compact_size(n)
    assert read_compact_size(enc, 0) == (n, len(enc))


def test_segwit_serialization_rules():
    txin = TxIn(outpoint(b"\x22" * 32, 1), b"", 0xFFFFFFFF, [b"\x01"])
    tx = Tx(2, [txin], [TxOut(5, b"\x51")], 0)
    raw = tx.serialize()
    assert raw[4:6] == b"\x00\x01"
    assert Tx.from_bytes(raw).wtxid == tx.wtxid
    empty_witness = raw.replace(b"\x01\x01\x01\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00")
    with pytest.raises(DecodeError, match="superfluous witness"):
        Tx.from_bytes(empty_witness)
    with pytest.raises(DecodeError, match="serialization flag"):
        Tx.from_bytes(raw[:5] + b"\x02" + raw[6:])
    coinbase = Tx(1, [TxIn(NULL_OUTPOINT, b"\x01\x01")], [TxOut(50, b"\x51")], 0)
    assert coinbase.is_coinbase() and not tx.is_coinbase()
    assert txin.prev_txid == b"\x22" * 32 and txin.prev_index == 1


def test_header_round_trip_and_errors(big_raw):
    header = BlockHeader.from_bytes(big_raw[:80])
    assert header.serialize() == big_raw[:80]
    with pytest.raises(DecodeError):
        BlockHeader.from_bytes(big_raw[:79])
    with pytest.raises(DecodeError):
        BlockHeader.parse(big_raw[:50])


# -- nBits (Core's arith_uint256 SetCompact/GetCompact tests) ---------------------------------

ZERO_BITS = [
    0, 0x00123456, 0x01003456, 0x02000056, 0x03000000, 0x04000000,
    0x00923456, 0x01803456, 0x02800056, 0x03800000, 0x04800000,
]  # fmt: skip


@pytest.mark.parametrize("bits", ZERO_BITS)
def test_bits_that_decode_to_zero(bits):
    decoded = bits_to_target(bits)
    assert decoded.target == 0 and not decoded.negative and not decoded.overflow
    assert target_to_bits(decoded.target) == 0
    assert block_work(bits) == 0


@pytest.mark.parametrize(
    ("bits", "target", "negative", "compact"),
    [
        (0x01123456, 0x12, False, 0x01120000),
        (0x01FEDCBA, 0x7E, True, 0x01FE0000),
        (0x02123456, 0x1234, False, 0x02123400),
        (0x03123456, 0x123456, False, 0x03123456),
        (0x04123456, 0x12345600, False, 0x04123456),
        (0x04923456, 0x12345600, True, 0x04923456),
        (0x05009234, 0x92340000, False, 0x05009234),
        (0x20123456, 0x123456 << (8 * 29), False, 0x20123456),
    ],
)
def test_bits_vectors(bits, target, negative, compact):
    decoded = bits_to_target(bits)
    assert decoded.target == target
    assert decoded.negative is negative and not decoded.overflow
    assert target_to_bits(decoded.target, negative) == compact


def test_bits_overflow_and_work():
    assert bits_to_target(0xFF123456).overflow
    assert bits_to_target(0x22000001).target == 1 << 248
    assert bits_to_target(0x22000001).overflow is False  # a 1-byte mantissa fits at size 34
    assert bits_to_target(0x21010000).overflow  # a 3-byte mantissa does not at size 33
    assert bits_to_target(0x23000001).overflow  # size 35
    assert bits_to_target(0x22000100).overflow  # > 0xff at size 34
    assert block_work(0xFF123456) == 0 and block_work(0x04923456) == 0
    assert block_work(0x1D00FFFF) == 0x100010001  # difficulty 1 on mainnet
    assert block_work(0x207FFFFF) == 2  # regtest
    assert target_to_bits(0x00000000FFFF0000000000000000000000000000000000000000000000000000) == (
        0x1D00FFFF
    )
    with pytest.raises(ValueError):
        target_to_bits(1 << 256)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, (1 << 256) - 1))
def test_target_to_bits_round_trip_is_truncation(target):
    bits = target_to_bits(target)
    decoded = bits_to_target(bits)
    assert not decoded.negative and not decoded.overflow
    assert decoded.target <= target
    assert target_to_bits(decoded.target) == bits


_scripts = st.one_of(st.binary(max_size=8), st.binary(min_size=250, max_size=300))
_txins = st.builds(
    TxIn,
    st.binary(min_size=36, max_size=36),
    _scripts,
    st.integers(0, 0xFFFFFFFF),
    st.one_of(st.just(()), st.lists(_scripts, max_size=3)),
)
_txouts = st.builds(TxOut, st.integers(-(2**63), 2**63 - 1), _scripts)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.lists(_txins, min_size=1, max_size=4),
    st.lists(_txouts, max_size=4),
    st.integers(0, 0xFFFFFFFF),
)
def test_built_transactions_round_trip(version, inputs, outputs, locktime):
    tx = Tx(version, inputs, outputs, locktime)
    raw = tx.serialize()
    parsed = Tx.from_bytes(raw)
    assert parsed.serialize() == raw
    assert parsed.version == version and parsed.locktime == locktime
    assert [(i.prevout, i.script_sig, i.sequence) for i in parsed.inputs] == [
        (i.prevout, i.script_sig, i.sequence) for i in inputs
    ]
    assert [(o.value, o.script_pubkey) for o in parsed.outputs] == [
        (o.value, o.script_pubkey) for o in outputs
    ]
    has_witness = any(i.witness for i in inputs)
    assert parsed.has_witness() == has_witness
    if has_witness:
        assert [list(i.witness) for i in parsed.inputs] == [list(i.witness) for i in inputs]
    assert parsed.txid == tx.txid and parsed.wtxid == tx.wtxid
    assert parsed.weight == tx.weight and parsed.base_size == tx.base_size
    assert Tx.from_bytes(tx.serialize_without_witness()).txid == tx.txid
