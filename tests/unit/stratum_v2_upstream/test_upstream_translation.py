"""Upstream jobs -> downstream work, and shares back: the extranonce and target mapping."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.stratum_v2.upstream.base import extranonce_padding
from appliance.stratum_v2.upstream.errors import UpstreamIncompatible
from appliance.stratum_v2.upstream.sv1_pool import Sv1PoolConfig, Sv1PoolUpstream
from appliance.stratum_v2.upstream.sv2_pool import Sv2PoolConfig, Sv2PoolUpstream
from protocols.stratum_v1 import events as ev
from protocols.stratum_v1.work import DIFF1_TARGET
from protocols.sv2.messages import (
    NewExtendedMiningJob,
    OpenExtendedMiningChannelSuccess,
    SetNewPrevHash,
    SetTarget,
)

SPACE = 8


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def test_padding_fills_larger_pool_spaces_and_refuses_smaller() -> None:
    assert extranonce_padding(8, 8) == b""
    assert extranonce_padding(16, 8) == bytes(8)
    why = "pool offers 4 extranonce bytes per channel, this module needs 8: use a pool"
    with pytest.raises(UpstreamIncompatible, match=why):
        extranonce_padding(4, 8)


def _sv2(prefix: bytes = b"\xaa\xbb", size: int = 12) -> tuple[Sv2PoolUpstream, list]:
    up = Sv2PoolUpstream(Sv2PoolConfig("127.0.0.1", 1, None, "u"), SPACE)
    seen: list = []
    up.set_work_sink(seen.append)
    up._handle(OpenExtendedMiningChannelSuccess(1, 7, b"\xff" * 32, size, prefix, 0))
    return up, seen


def test_sv2_future_job_waits_for_its_prev_hash_and_keeps_the_coinbase() -> None:
    up, seen = _sv2()
    job = NewExtendedMiningJob(7, 3, None, 0x20000000, True, (b"\x01" * 32,), b"PRE", b"SUF")
    up._handle(job)
    assert seen == []  # future job: nothing to mine yet
    up._handle(SetNewPrevHash(7, 3, b"\x22" * 32, 1_700_000_000, 0x207FFFFF))
    (work,) = seen
    ours = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    # the pool's coinbase: prefix ‖ its extranonce prefix ‖ 12 bytes we roll ‖ suffix
    assert work.coinbase(ours) == b"PRE" + b"\xaa\xbb" + bytes(4) + ours + b"SUF"
    assert (work.prev_hash, work.nbits, work.min_ntime) == (b"\x22" * 32, 0x207FFFFF, 1_700_000_000)
    assert work.merkle_path == (b"\x01" * 32,) and work.transactions is None
    # a non-future job on the same prev hash is work at once, with its own min_ntime
    up._handle(NewExtendedMiningJob(7, 4, 1_700_000_100, 0x20000000, True, (), b"P2", b"S2"))
    assert len(seen) == 2 and seen[1].min_ntime == 1_700_000_100
    sent = up._templates[seen[1].template_id]
    assert (sent.job_id, sent.padding, sent.rolling_allowed) == (4, bytes(4), True)


def test_sv2_new_prev_hash_retires_older_work_and_set_target_applies() -> None:
    up, seen = _sv2()
    up._handle(NewExtendedMiningJob(7, 1, None, 0x20000000, True, (), b"A", b"B"))
    up._handle(SetNewPrevHash(7, 1, b"\x01" * 32, 10, 0x207FFFFF))
    up._handle(NewExtendedMiningJob(7, 2, None, 0x20000000, True, (), b"C", b"D"))
    up._handle(SetNewPrevHash(7, 2, b"\x02" * 32, 20, 0x207FFFFF))
    assert list(up._templates) == [seen[-1].template_id]
    up._handle(SetTarget(7, (1234).to_bytes(32, "little")))
    assert up.target == 1234


def test_sv2_channel_with_too_small_extranonce_is_incompatible() -> None:
    up = Sv2PoolUpstream(Sv2PoolConfig("127.0.0.1", 1, None, "u"), SPACE)
    with pytest.raises(UpstreamIncompatible):
        up._handle(OpenExtendedMiningChannelSuccess(1, 7, b"\xff" * 32, 4, b"", 0))


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_sv1_difficulty_maps_to_the_exact_target_from_the_next_job_on(diff: float) -> None:
    up = Sv1PoolUpstream(Sv1PoolConfig("127.0.0.1", 1, "u"), SPACE)
    up.conn.extranonce1, up.conn.extranonce2_size = b"\xf0\x0d", 8
    notify = ev.Notify("j1", b"\x33" * 32, b"CB1", b"CB2", (), 0x20000000, 0x207FFFFF, 99, True)
    up._handle(notify)
    first = up._templates[1].target
    assert first == DIFF1_TARGET  # difficulty 1 until the pool says otherwise
    up._handle(ev.SetDifficulty(diff))
    assert up._templates[1].target == first  # the job already sent keeps its target
    up._handle(ev.Notify("j2", b"\x33" * 32, b"CB1", b"CB2", (), 0x20000000, 0x207FFFFF, 99, False))
    target = up._templates[2].target
    # exact: target = floor(DIFF1 / diff), so the error is below one unit of the target
    assert 0 <= DIFF1_TARGET - Fraction(target) * Fraction(diff) < Fraction(diff)
    assert up.work.coinbase(bytes(8)) == b"CB1" + b"\xf0\x0d" + bytes(8) + b"CB2"


def test_sv2_reconnect_forgets_old_work_and_never_reuses_template_ids() -> None:
    up, seen = _sv2()
    up._handle(NewExtendedMiningJob(7, 1, None, 0x20000000, True, (), b"A", b"B"))
    up._handle(SetNewPrevHash(7, 1, b"\x01" * 32, 10, 0x207FFFFF))
    first_id = seen[-1].template_id
    up._reset()  # what run() does before connecting again
    again: list = []
    up.set_work_sink(again.append)
    assert again == [] and up.work is None and up.channel_id is None
    up._handle(OpenExtendedMiningChannelSuccess(1, 9, b"\xff" * 32, 12, b"\xcc", 0))
    up._handle(NewExtendedMiningJob(9, 1, None, 0x20000000, True, (), b"A", b"B"))
    up._handle(SetNewPrevHash(9, 1, b"\x01" * 32, 10, 0x207FFFFF))
    assert again[-1].template_id > first_id and first_id not in up._templates
