"""Job declaration decisions without IO: declared coinbases, custom-job checks, tokens."""

from __future__ import annotations

import contextlib
import random

import pytest

from appliance.stratum_v2.jd_jobs import (
    CustomJobError,
    DeclaredJob,
    DeclareError,
    JdRejected,
    check_custom_job,
    check_height,
    check_payout,
    parse_declared_coinbase,
    rebuild_block,
    work_from_custom_job,
)
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from protocols.bitcoin.merkle import merkle_branch
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.messages import PushSolution, SetCustomMiningJob
from tests.helpers.jd_rig import jd_coinbase
from tests.helpers.sri import REGTEST_NBITS, REGTEST_TARGET, grind, sha256d

POOL = b"\x00\x14" + b"\x11" * 20
OTHER = b"\x00\x14" + b"\x22" * 20
PREV = bytes(range(32))


def _txs(n: int) -> list[Tx]:
    return [
        Tx(2, [TxIn(bytes([i + 1]) * 32 + b"\0\0\0\0", b"", 0xFFFFFFFD)], [TxOut(1000, OTHER)], 0)
        for i in range(n)
    ]


def _job(txs: list[Tx], size: int = 20, height: int = 200) -> tuple[DeclaredJob, object]:
    cb = jd_coinbase(height, [TxOut(50_0000_0000, POOL)], txs, size)
    declared = parse_declared_coinbase(cb.prefix, cb.suffix)
    job = DeclaredJob(1, 9, 0x20000000, declared, tuple(txs), PREV, REGTEST_NBITS, height)
    return job, cb


def _custom(job: DeclaredJob, cb, **change) -> SetCustomMiningJob:
    fields = dict(
        channel_id=3, request_id=4, mining_job_token=b"t" * 8, version=job.version,
        prev_hash=PREV, min_ntime=1_700_000_000, nbits=REGTEST_NBITS, coinbase_tx_version=2,
        coinbase_prefix=cb.script_prefix, coinbase_tx_input_n_sequence=0xFFFFFFFF,
        coinbase_tx_outputs=cb.outputs, coinbase_tx_locktime=0, merkle_path=job.merkle_path,
    )  # fmt: skip
    fields.update(change)
    return SetCustomMiningJob(**fields)


def test_parse_finds_the_extranonce_at_the_end_of_the_script_sig() -> None:
    job, cb = _job(_txs(3), size=20)
    coinbase = job.coinbase
    assert coinbase.segwit and coinbase.extranonce_size == 20
    assert coinbase.script_prefix == cb.script_prefix
    assert coinbase.tx.txid == cb.tx.txid  # zero extranonce, as built
    filled = coinbase.with_extranonce(b"\x07" * 20)
    assert filled.inputs[0].script_sig.endswith(b"\x07" * 20)
    with pytest.raises(ValueError):
        coinbase.with_extranonce(b"\x07" * 19)


def test_parse_accepts_a_coinbase_without_witness() -> None:
    script_sig = bytes([0x02, 0xC8, 0x00]) + bytes(8)
    tx = Tx(1, [TxIn(NULL_OUTPOINT, script_sig, 0xFFFFFFFF)], [TxOut(5, POOL)], 0)
    raw = tx.serialize()
    cut = 4 + 1 + 36 + 1 + 3
    declared = parse_declared_coinbase(raw[:cut], raw[cut + 8 :])
    assert not declared.segwit and declared.extranonce_size == 8


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda p, s: (p[:20], s), DeclareError.INVALID_COINBASE_TX),
        (lambda p, s: (p[:7] + b"\x02" + p[8:], s), DeclareError.INVALID_COINBASE_TX_INPUT),
        (lambda p, s: (p[:8] + b"\x01" + p[9:], s), DeclareError.INVALID_COINBASE_TX_INPUT),
        (lambda p, s: (p, s[:-3]), DeclareError.INVALID_COINBASE_TX),
        (lambda p, s: (p[:43] + b"\x65" + p[44:], s), DeclareError.INVALID_COINBASE_TX),
    ],
    ids=["short", "two-inputs", "not-null-outpoint", "truncated-suffix", "script-over-100"],
)
def test_parse_refuses_what_is_no_coinbase(mangle, code) -> None:
    _, cb = _job([])
    prefix, suffix = mangle(cb.prefix, cb.suffix)
    with pytest.raises(JdRejected) as info:
        parse_declared_coinbase(prefix, suffix)
    assert info.value.code is code


def test_parse_only_ever_raises_jd_rejected_on_garbage() -> None:
    rng = random.Random(7)
    _, cb = _job(_txs(1))
    for _ in range(3000):
        prefix, suffix = bytearray(cb.prefix), bytearray(cb.suffix)
        for buf in (prefix, suffix):
            for _ in range(rng.randint(1, 4)):
                if buf:
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
        cut = rng.randrange(len(prefix) + 1)
        with contextlib.suppress(JdRejected):
            parse_declared_coinbase(
                bytes(prefix[:cut] if rng.random() < 0.2 else prefix), bytes(suffix)
            )


def test_payout_and_height_checks() -> None:
    job, _ = _job([])
    check_payout(job.coinbase.tx, POOL)
    with pytest.raises(JdRejected) as info:
        check_payout(job.coinbase.tx, OTHER)
    assert info.value.code is DeclareError.INVALID_COINBASE_OUTPUTS
    split = jd_coinbase(200, [TxOut(49_0000_0000, POOL), TxOut(1_0000_0000, OTHER)], [], 20)
    with pytest.raises(JdRejected, match="someone other"):
        check_payout(parse_declared_coinbase(split.prefix, split.suffix).tx, POOL)
    check_height(job.coinbase.tx, 200)
    with pytest.raises(JdRejected) as info:
        check_height(job.coinbase.tx, 201)
    assert info.value.code is DeclareError.STALE_CHAIN_TIP


def test_custom_job_must_describe_the_declared_block() -> None:
    job, cb = _job(_txs(3))
    assert check_custom_job(job, _custom(job, cb), 20) is None
    cases = {
        CustomJobError.STALE_CHAIN_TIP: dict(prev_hash=bytes(32)),
        CustomJobError.INVALID_NBITS: dict(nbits=0x1D00FFFF),
        CustomJobError.INVALID_VERSION: dict(version=0x20000004),
        CustomJobError.INVALID_COINBASE_TX_VERSION: dict(coinbase_tx_version=1),
        CustomJobError.INVALID_COINBASE_PREFIX: dict(coinbase_prefix=cb.script_prefix[:-1]),
        CustomJobError.INVALID_N_SEQUENCE: dict(coinbase_tx_input_n_sequence=0),
        CustomJobError.INVALID_COINBASE_OUTPUTS: dict(coinbase_tx_outputs=cb.outputs[:-1]),
        CustomJobError.INVALID_LOCKTIME: dict(coinbase_tx_locktime=5),
        CustomJobError.INVALID_MERKLE_PATH: dict(merkle_path=job.merkle_path[:-1]),
    }
    for code, change in cases.items():
        assert check_custom_job(job, _custom(job, cb, **change), 20) is code, code
    # A channel whose extranonce space differs from the declared one cannot mine it.
    assert check_custom_job(job, _custom(job, cb), 16) is CustomJobError.INVALID_COINBASE_PREFIX


def test_custom_work_and_push_solution_rebuild_the_same_block() -> None:
    txs = _txs(2)
    job, cb = _job(txs)
    work = work_from_custom_job(job, _custom(job, cb), 20, 99)
    extranonce = bytes(range(20))
    header_head = (
        job.version.to_bytes(4, "little") + PREV + work.merkle_root(extranonce)
        + (1_700_000_000).to_bytes(4, "little") + REGTEST_NBITS.to_bytes(4, "little")
    )  # fmt: skip
    nonce = grind(header_head, REGTEST_TARGET)
    push = PushSolution(
        extranonce=extranonce, prev_hash=PREV, nonce=nonce, ntime=1_700_000_000,
        nbits=REGTEST_NBITS, version=job.version,
    )  # fmt: skip
    block = rebuild_block(job, push)
    assert block is not None
    assert block.hash == sha256d(header_head + nonce.to_bytes(4, "little"))
    assert [t.txid for t in block.txs[1:]] == [t.txid for t in txs]
    assert block.txs[0].inputs[0].witness == cb.tx.inputs[0].witness  # witness kept
    assert tuple(merkle_branch([bytes(32), *(t.txid for t in txs)], 0)) == work.merkle_path
    # Wrong prev_hash, extranonce size, or a hash above the target: not this job's block.
    assert (
        rebuild_block(
            job,
            PushSolution(extranonce, bytes(32), nonce, 1_700_000_000, REGTEST_NBITS, job.version),
        )
        is None
    )
    assert (
        rebuild_block(
            job,
            PushSolution(extranonce[:-1], PREV, nonce, 1_700_000_000, REGTEST_NBITS, job.version),
        )
        is None
    )
    bad = next(
        n for n in range(1000)
        if int.from_bytes(sha256d(header_head + n.to_bytes(4, "little")), "little") > REGTEST_TARGET
    )  # fmt: skip
    assert (
        rebuild_block(
            job, PushSolution(extranonce, PREV, bad, 1_700_000_000, REGTEST_NBITS, job.version)
        )
        is None
    )


def test_tokens_are_per_owner_spent_once_and_bounded() -> None:
    now = [0.0]
    reg = JobTokenRegistry(max_allocated=3, max_declared=2, allocated_ttl=60, clock=lambda: now[0])
    job, _ = _job([])
    a = reg.allocate(1)
    assert len(a) == 8 and reg.is_allocated(a, 1) and not reg.is_allocated(a, 2)
    assert reg.activate(a, 2, job) is None  # someone else's token
    declared = reg.activate(a, 1, job)
    assert declared is not None and reg.declared(declared) is job
    assert reg.activate(a, 1, job) is None  # spent
    # Expiry and the bound on allocations.
    old = reg.allocate(1)
    now[0] = 61
    assert not reg.is_allocated(old, 1)
    tokens = [reg.allocate(1) for _ in range(5)]
    assert [reg.is_allocated(t, 1) for t in tokens] == [False, False, True, True, True]
    # Declared jobs: newest kept, oldest dropped.
    more = [reg.activate(t, 1, job) for t in tokens[2:]]
    assert reg.declared(declared) is None and reg.declared(more[0]) is None
    assert reg.declared(more[1]) is job and reg.declared(more[2]) is job
    reg.forget_owner(1)
    assert reg.stats() == {"allocated": 0, "declared": 2}
