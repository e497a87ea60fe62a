"""Share validation: a hand-computed header verifies, and each error path in SRI's order."""

from __future__ import annotations

import dataclasses

import pytest

from appliance.stratum_v2.errors import ShareError
from appliance.stratum_v2.jobs import ChannelKind
from appliance.stratum_v2.shares import validate_share
from protocols.sv2.messages import SubmitSharesExtended, SubmitSharesStandard
from tests.unit.stratum_v2.sv2srv_vectors import (
    NTIME,
    SPACE,
    VERSION,
    channel,
    find_nonce,
    header_by_hand,
    root_by_hand,
    sha256d,
    work,
)

TARGET = 1 << 250  # one hash in 64 is a share


def _standard():
    ch = channel(ChannelKind.STANDARD, TARGET)
    job_id = ch.jobs.new_job(work())[0].job_id
    return ch, job_id, root_by_hand(ch.jobs.extranonce_prefix)


def _std(job_id: int, nonce: int, **kw) -> SubmitSharesStandard:
    fields = {"ntime": NTIME, "version": VERSION} | kw
    return SubmitSharesStandard(7, 1, job_id, nonce, fields["ntime"], fields["version"])


def test_hand_computed_standard_share_is_accepted() -> None:
    ch, job_id, root = _standard()
    nonce = find_nonce(root, TARGET)
    expected = int.from_bytes(sha256d(header_by_hand(root, NTIME, nonce)), "little")
    result = validate_share(ch, _std(job_id, nonce))
    assert result.accepted and result.hash_value == expected and not result.is_block
    assert result.block is None


def test_hand_computed_extended_share_is_accepted() -> None:
    ch = channel(ChannelKind.EXTENDED, TARGET)
    job_id = ch.jobs.new_job(work())[0].job_id
    miner_part = bytes(range(SPACE - 4))
    root = root_by_hand(ch.jobs.extranonce_prefix + miner_part)
    nonce = find_nonce(root, TARGET)
    share = SubmitSharesExtended(7, 1, job_id, nonce, NTIME, VERSION, miner_part)
    assert validate_share(ch, share).accepted
    # the same nonce with another extranonce is a different header: most likely no share
    other = dataclasses.replace(share, extranonce=bytes(SPACE - 4))
    other_root = root_by_hand(ch.jobs.extranonce_prefix + bytes(SPACE - 4))
    other_value = int.from_bytes(sha256d(header_by_hand(other_root, NTIME, nonce)), "little")
    assert validate_share(ch, other).accepted == (other_value <= TARGET)


def test_low_difficulty_then_duplicate() -> None:
    ch, job_id, root = _standard()
    weak = find_nonce(root, TARGET, below=False)
    assert validate_share(ch, _std(job_id, weak)).error is ShareError.DIFFICULTY_TOO_LOW
    good = find_nonce(root, TARGET)
    assert validate_share(ch, _std(job_id, good)).accepted
    assert validate_share(ch, _std(job_id, good)).error is ShareError.DUPLICATE_SHARE


def test_stale_versus_unknown_job_id() -> None:
    ch, job_id, root = _standard()
    nonce = find_nonce(root, TARGET)
    assert validate_share(ch, _std(job_id + 100, nonce)).error is ShareError.INVALID_JOB_ID
    ch.jobs.new_job(work(prev=bytes(32), template_id=2))
    assert validate_share(ch, _std(job_id, nonce)).error is ShareError.STALE_SHARE


def test_extranonce_size_ntime_and_version_mask() -> None:
    ch = channel(ChannelKind.EXTENDED, TARGET)
    job_id = ch.jobs.new_job(work())[0].job_id
    short = SubmitSharesExtended(7, 1, job_id, 0, NTIME, VERSION, bytes(SPACE - 5))
    assert validate_share(ch, short).error is ShareError.BAD_EXTRANONCE_SIZE
    early = SubmitSharesExtended(7, 1, job_id, 0, NTIME - 1, VERSION, bytes(SPACE - 4))
    assert validate_share(ch, early).error is ShareError.INVALID_TIMESTAMP
    outside = SubmitSharesExtended(7, 1, job_id, 0, NTIME, VERSION | 1 << 30, bytes(SPACE - 4))
    assert validate_share(ch, outside).error is ShareError.VERSION_ROLLING_NOT_ALLOWED
    rolled = dataclasses.replace(outside, version=VERSION | 0x1FFFE000)  # BIP320 bits: allowed
    assert validate_share(ch, rolled).error in (None, ShareError.DIFFICULTY_TOO_LOW)
    ch.version_rolling = False
    assert validate_share(ch, rolled).error is ShareError.VERSION_ROLLING_NOT_ALLOWED


def test_order_stale_wins_over_bad_extranonce() -> None:
    ch = channel(ChannelKind.EXTENDED, TARGET)
    old = ch.jobs.new_job(work())[0].job_id
    ch.jobs.new_job(work(prev=bytes(32), template_id=2))
    bad = SubmitSharesExtended(7, 1, old, 0, NTIME - 1, 0, b"")
    assert validate_share(ch, bad).error is ShareError.STALE_SHARE


@pytest.mark.parametrize("kind", [ChannelKind.STANDARD, ChannelKind.EXTENDED])
def test_block_meeting_share_builds_the_block(kind: ChannelKind) -> None:
    easy_bits = 0x207FFFFF  # regtest: half of all hashes are blocks
    ch = channel(kind, 1 << 200)  # channel target far harder than the network's
    w = work(nbits=easy_bits)
    job_id = ch.jobs.new_job(w)[0].job_id
    miner = bytes(SPACE - 4) if kind is ChannelKind.EXTENDED else b""
    root = root_by_hand(ch.jobs.extranonce_prefix + miner)
    nonce = 0
    while True:
        raw = header_by_hand(root, NTIME, nonce, nbits=easy_bits)
        if int.from_bytes(sha256d(raw), "little") <= w.network_target:
            break
        nonce += 1
    if kind is ChannelKind.EXTENDED:
        share = SubmitSharesExtended(7, 1, job_id, nonce, NTIME, VERSION, miner)
    else:
        share = _std(job_id, nonce)
    result = validate_share(ch, share)
    assert result.accepted and result.is_block and result.block is not None
    assert result.block.header.serialize() == raw
    assert result.block.txs[0].serialize_without_witness() == w.coinbase(
        ch.jobs.extranonce_prefix + miner
    )
