"""Size-bounded eviction with the rolling minimum fee, expiry, and the mempool file."""

from __future__ import annotations

import os

import pytest

from node.mempool import Mempool, MempoolPersistError, RemovalReason
from node.mempool import persist as P
from tests.unit.mempool.mempool_tools import mine, spend

# One 1-in-1-out spend uses ~2 x 200 bytes + 600 of our usage estimate.
TINY_MB = 0.0026


def _fill(env, fees: list[int]) -> list:
    txs = []
    for fee in fees:
        tx, _ = spend(env.mature(1), 1, fee=fee)
        result = env.pool.accept(tx)
        assert result.accepted or result.reason == "mempool full", result
        txs.append(tx)
    return txs


def test_eviction_removes_lowest_feerate_and_raises_min_fee(make_env):
    env = make_env(max_size_mb=TINY_MB)
    removed = []
    env.pool.add_removal_listener(lambda t, why: removed.append((t, why)))
    txs = _fill(env, [3_000, 5_000, 4_000, 6_000])
    assert env.pool.info()["usage"] <= env.pool.max_bytes
    capacity = len(env.pool)
    assert 2 <= capacity < 4, "test sizes assume the tiny pool holds 2-3 spends"
    evicted = [t for t, why in removed if why is RemovalReason.SIZELIMIT]
    assert txs[0].txid in evicted  # the 3,000-sat one went first
    assert all(env.pool.get(t) is None for t in evicted)
    min_fee = env.pool.min_fee_rate()
    worst_vsize = env.pool.get(txs[-1].txid).vsize
    assert min_fee > env.pool.min_relay_feerate
    assert min_fee >= 3_000 * 1000 // worst_vsize + env.pool.incremental_relay_feerate
    assert env.pool.info()["mempoolminfee"] == round(min_fee / 1e8, 8)
    low, _ = spend(env.mature(1), 1, fee=2_000)
    assert env.pool.accept(low).reason == "mempool min fee not met"
    # Passes the floor but is the worst package: admitted, then trimmed away.
    lowest_in = min(e.modified_fee for e in env.pool.entries())
    mid, _ = spend(env.mature(1), 1, fee=lowest_in - 100)
    assert mid.vsize * min_fee / 1000 <= lowest_in - 100
    result = env.pool.accept(mid)
    assert result.reason == "mempool full" and env.pool.get(mid.txid) is None
    assert (mid.txid, RemovalReason.SIZELIMIT) in removed


def test_min_fee_decays_after_a_block(make_env):
    env = make_env(max_size_mb=TINY_MB)
    _fill(env, [3_000, 5_000, 4_000, 6_000])
    raised = env.pool.min_fee_rate()
    assert raised > 0
    env.clock.now += 3_600
    assert env.pool.min_fee_rate() == raised  # no block yet: no decay
    mine(env.chain, [], extra=b"decay")
    env.clock.now += 60
    assert 0 < env.pool.min_fee_rate() <= raised
    env.clock.now += 240 * 3_600
    assert env.pool.min_fee_rate() == 0


def test_expiry_on_accept(make_env):
    env = make_env(expiry_hours=1)
    old, _ = spend(env.mature(1), 1)
    assert env.pool.accept(old, now=env.clock.now - 7_200).accepted
    new, _ = spend(env.mature(1), 1)
    assert env.pool.accept(new).accepted
    assert env.pool.txids() == [new.txid]


def test_save_load_round_trip(env, tmp_path):
    parent, outs = spend(env.mature(1), 2, fee=3_000)
    child, _ = spend(outs[:1], 1)
    other, _ = spend(env.mature(1), 1)
    for i, tx in enumerate((parent, child, other)):
        assert env.pool.accept(tx, now=env.clock.now - 10 * i).accepted
    env.pool.prioritise(other.txid, 1_234)
    env.pool.prioritise(b"\x99" * 32, 55)  # not in the pool: persisted as a bare delta
    path = tmp_path / "mempool.dat"
    assert env.pool.save(str(path)) == 3
    assert not (tmp_path / "mempool.dat.tmp").exists()
    fresh = Mempool(env.chain, clock=env.clock, follow_chain=False)
    result = fresh.load(str(path))
    assert (result.accepted, result.failed, result.expired, result.already_there) == (3, 0, 0, 0)
    assert fresh.txids() == env.pool.txids()
    for e in env.pool.entries():
        f = fresh.get(e.txid)
        assert (f.time, f.fee, f.delta, f.wtxid) == (e.time, e.fee, e.delta, e.wtxid)
    assert fresh.fee_deltas()[b"\x99" * 32] == 55
    assert fresh.info()["loaded"] is True
    again = fresh.load(str(path))
    assert again.already_there == 3


def test_load_revalidates_against_the_chain(env, tmp_path):
    a, _ = spend(env.mature(1), 1)
    b, _ = spend(env.mature(1), 1)
    assert env.pool.accept(a).accepted and env.pool.accept(b, now=env.clock.now - 1e6).accepted
    path = tmp_path / "mempool.dat"
    env.pool.save(str(path))
    mine(env.chain, [a], 1_000)
    fresh = Mempool(env.chain, clock=env.clock, expiry_hours=24, follow_chain=False)
    result = fresh.load(str(path))
    assert (result.accepted, result.failed, result.expired) == (0, 1, 1)
    assert len(fresh) == 0
    assert fresh.load(str(tmp_path / "absent.dat")).accepted == 0


def test_crash_during_save_keeps_previous_file(env, tmp_path, monkeypatch):
    a, _ = spend(env.mature(1), 1)
    assert env.pool.accept(a).accepted
    path = tmp_path / "mempool.dat"
    env.pool.save(str(path))
    good = path.read_bytes()
    b, _ = spend(env.mature(1), 1)
    assert env.pool.accept(b).accepted

    def crash(*args, **kwargs):
        raise OSError("power cut before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        env.pool.save(str(path))
    monkeypatch.undo()
    assert path.read_bytes() == good  # the old file is intact
    assert (tmp_path / "mempool.dat.tmp").exists()  # the half-done one is ignored
    records, _ = P.decode(path.read_bytes())
    assert [r.raw for r in records] == [a.serialize()]
    env.pool.save(str(path))  # a later save replaces the stale temp file
    assert len(P.decode(path.read_bytes())[0]) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-1],
        lambda d: d[:40],
        lambda d: b"XXXXXXXX" + d[8:],
        lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:],
    ],
)
def test_damaged_file_is_refused(env, tmp_path, damage):
    a, _ = spend(env.mature(1), 1)
    env.pool.accept(a)
    path = tmp_path / "mempool.dat"
    env.pool.save(str(path))
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(MempoolPersistError):
        Mempool(env.chain, clock=env.clock, follow_chain=False).load(str(path))


def test_format_rejects_other_versions():
    data = P.encode([P.SavedTx(b"\x01\x02", 5, -3)], {b"\x00" * 32: 9})
    assert P.decode(data) == ([P.SavedTx(b"\x01\x02", 5, -3)], {b"\x00" * 32: 9})
    body = bytearray(data[:-32])
    body[8] = 2
    import hashlib

    with pytest.raises(MempoolPersistError, match="version 2"):
        P.decode(bytes(body) + hashlib.sha256(bytes(body)).digest())
