"""BM1397 midstate wire form and BIP320 version stepping.

The SHA-256 state arithmetic is tested in ``test_drivers_sha256_state``.
"""

from __future__ import annotations

from drivers.asic.bm13xx import midstate
from drivers.sha256_state import midstate_words


def test_wire_form_is_reversed_words():
    first64 = bytes(range(64))
    words = midstate_words(first64)
    wire = midstate.midstate_wire(first64)
    assert wire[:4] == words[7].to_bytes(4, "big") and wire[28:] == words[0].to_bytes(4, "big")
    assert midstate.words_from_wire(wire) == words


def test_next_version_steps_inside_mask():
    mask = 0x1FFFE000
    assert midstate.next_version(0x20000000, mask) == 0x20002000
    assert midstate.next_version(0x20002000, mask) == 0x20004000
    assert midstate.next_version(0x3FFFE000, mask) == 0x20000000  # wraps, bit 29 kept
    assert midstate.next_version(0x20000000, 0) == 0x20000000
    assert midstate.rolled_versions(0x20000000, mask, 4) == (
        0x20000000,
        0x20002000,
        0x20004000,
        0x20006000,
    )
    # a sparse mask: carries jump over unmasked bits
    assert midstate.next_version(0x00002000, 0x0000A000) == 0x00008000
