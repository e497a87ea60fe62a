"""Share validation: a real block share, a mined low-difficulty share, and every rejection."""

from __future__ import annotations

from dataclasses import replace

from protocols.stratum_v1 import ErrorCode, JobBook, Notify, Submit, share_header
from protocols.stratum_v1.work import (
    DIFF1_TARGET,
    MAX_TARGET,
    difficulty_to_target,
    hash_to_display,
    hash_to_int,
    merkle_branch_for_coinbase,
    sha256d,
)

MASK = 0x1FFFE000


def _job_and_share(blk):
    off = blk.script_sig_offset
    notify = Notify(
        job_id="a1",
        prevhash=blk.header[4:36],
        coinb1=blk.coinbase[: off + 4],
        coinb2=blk.coinbase[off + 12 :],
        merkle_branch=tuple(merkle_branch_for_coinbase(blk.txids)),
        version=4,
        nbits=0x18058436,
        ntime=0x57478DB3,
        clean_jobs=True,
    )
    en1 = blk.coinbase[off + 4 : off + 8]
    submit = Submit("w", "a1", blk.coinbase[off + 8 : off + 12], 0x57478DB3, 0x7E5FB903, req_id=1)
    return notify, en1, submit


def test_real_block_share_is_accepted_as_a_block(block_413567):
    notify, en1, submit = _job_and_share(block_413567)
    book = JobBook()
    book.add(notify)
    res = book.validate(submit, en1, difficulty_to_target(65536))
    assert res.error is None and res.is_block
    assert hash_to_display(res.hash) == block_413567.block_hash_hex
    assert res.header == block_413567.header
    assert res.difficulty > 1e11
    # the same share again is a duplicate (still recognised as the block)
    dup = book.validate(submit, en1, difficulty_to_target(65536))
    assert dup.error == ErrorCode.DUPLICATE_SHARE


def test_wrong_nonce_is_low_difficulty(block_413567):
    notify, en1, submit = _job_and_share(block_413567)
    book = JobBook()
    book.add(notify)
    res = book.validate(replace(submit, nonce=submit.nonce ^ 1), en1, DIFF1_TARGET)
    assert res.error == ErrorCode.LOW_DIFFICULTY_SHARE and not res.is_block
    assert res.difficulty < 1


def test_stale_and_unknown_jobs(block_413567):
    notify, en1, submit = _job_and_share(block_413567)
    book = JobBook()
    book.add(notify)
    book.add(replace(notify, job_id="a2", clean_jobs=False))
    assert len(book) == 2 and book.get("a1") is notify
    book.add(replace(notify, job_id="b1", clean_jobs=True))
    assert book.validate(submit, en1, MAX_TARGET).error == ErrorCode.JOB_NOT_FOUND
    assert book.validate(replace(submit, job_id="zz"), en1, MAX_TARGET).error == (
        ErrorCode.JOB_NOT_FOUND
    )


def test_job_book_is_bounded(block_413567):
    notify, _, _ = _job_and_share(block_413567)
    book = JobBook(max_jobs=3)
    for i in range(10):
        book.add(replace(notify, job_id=str(i), clean_jobs=False))
    assert len(book) == 3 and book.get("6") is None and book.get("9") is not None


def test_ntime_and_version_mask_rejections(block_413567):
    notify, en1, submit = _job_and_share(block_413567)
    book = JobBook()
    book.add(notify)
    early = book.validate(replace(submit, ntime=notify.ntime - 1), en1, MAX_TARGET)
    assert early.error == ErrorCode.OTHER and "ntime" in early.message
    late = book.validate(replace(submit, ntime=notify.ntime + 7201), en1, MAX_TARGET)
    assert late.error == ErrorCode.OTHER
    outside = book.validate(replace(submit, version_bits=0x00000010), en1, MAX_TARGET, MASK)
    assert outside.error == ErrorCode.OTHER and "mask" in outside.message


def test_mined_share_with_rolled_version(block_413567):
    """Mine a real easy share with version rolling and check the pool accepts exactly it."""
    notify, en1, submit = _job_and_share(block_413567)
    notify = replace(notify, version=0x20000000)
    book = JobBook()
    book.add(notify)
    target = DIFF1_TARGET << 24  # difficulty 2**-24: about one hash in 256 qualifies
    found = None
    for nonce in range(100_000):
        cand = replace(submit, nonce=nonce, version_bits=0x00006000)
        if hash_to_int(sha256d(share_header(notify, en1, cand, MASK))) <= target:
            found = cand
            break
    assert found is not None
    res = book.validate(found, en1, target, MASK)
    assert res.error is None and not res.is_block
    assert int.from_bytes(res.header[:4], "little") == 0x20006000
    # the full-version form of the same bits is the same share → duplicate
    full = replace(found, version_bits=0x20006000)
    assert book.validate(full, en1, target, MASK).error == ErrorCode.DUPLICATE_SHARE
    # without the rolled bits the header differs, so the hash no longer meets the target
    # (true for this nonce with overwhelming probability)
    plain = book.validate(replace(found, version_bits=None), en1, DIFF1_TARGET, MASK)
    assert plain.error == ErrorCode.LOW_DIFFICULTY_SHARE
