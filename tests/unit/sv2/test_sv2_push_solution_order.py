"""PushSolution's wire order: nonce before ntime (spec; SRI job_declaration_sv2 10.x).

Both are U32, so only a pinned byte layout catches a swap; the swap was found against
jd_client_sv2 0.6.0, whose pushed block came out with the nonce as its timestamp.
"""

from __future__ import annotations

from protocols.sv2.messages import PushSolution


def test_push_solution_puts_nonce_before_ntime() -> None:
    msg = PushSolution(
        extranonce=b"\xaa\xbb", prev_hash=bytes(range(32)), nonce=0x11223344, ntime=0x55667788,
        nbits=0x207FFFFF, version=0x20000000,
    )  # fmt: skip
    payload = msg.encode_payload()
    assert payload == (
        b"\x02\xaa\xbb" + bytes(range(32)) + bytes.fromhex("44332211") + bytes.fromhex("88776655")
        + bytes.fromhex("ffff7f20") + bytes.fromhex("00000020")
    )  # fmt: skip
    assert PushSolution.CODEC.decode(payload) == msg
