"""Pure-Python RIPEMD-160, used only where hashlib's OpenSSL lacks it (OpenSSL 3 default provider).

Written from the algorithm description (Dobbertin, Bosselaers, Preneel, 1996). It is
slow (~tens of µs per short message), which is fine for addresses and HASH160 of keys;
hot paths run with OpenSSL's implementation when present.
"""

from __future__ import annotations

import struct

# Message-word order and rotation amounts, left and right lines, 80 steps each.
_R_LEFT = (
    *range(16),
    *(7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8),
    *(3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12),
    *(1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2),
    *(4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13),
)
_R_RIGHT = (
    *(5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12),
    *(6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2),
    *(15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13),
    *(8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14),
    *(12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11),
)
_S_LEFT = (
    *(11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8),
    *(7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12),
    *(11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5),
    *(11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12),
    *(9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6),
)
_S_RIGHT = (
    *(8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6),
    *(9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11),
    *(9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5),
    *(15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8),
    *(8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11),
)
_K_LEFT = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_K_RIGHT = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)
_MASK = 0xFFFFFFFF
_BLOCK = struct.Struct("<16I")


def _compress(h: list[int], block: bytes) -> None:
    """One 64-byte block. The five boolean functions are written inline per round
    (f1..f5 left, f5..f1 right) because a call per step dominated the running time."""
    x = _BLOCK.unpack(block)
    m = _MASK
    al, bl, cl, dl, el = h
    ar, br, cr, dr, er = h
    for j in range(80):
        rnd = j >> 4
        if rnd == 0:
            fl = bl ^ cl ^ dl
            fr = br ^ (cr | (~dr & m))
        elif rnd == 1:
            fl = (bl & cl) | (~bl & m & dl)
            fr = (br & dr) | (cr & ~dr & m)
        elif rnd == 2:
            fl = (bl | (~cl & m)) ^ dl
            fr = (br | (~cr & m)) ^ dr
        elif rnd == 3:
            fl = (bl & dl) | (cl & ~dl & m)
            fr = (br & cr) | (~br & m & dr)
        else:
            fl = bl ^ (cl | (~dl & m))
            fr = br ^ cr ^ dr
        t = (al + fl + x[_R_LEFT[j]] + _K_LEFT[rnd]) & m
        s = _S_LEFT[j]
        t = (((t << s) | (t >> (32 - s))) + el) & m
        al, el, dl, cl, bl = el, dl, ((cl << 10) | (cl >> 22)) & m, bl, t
        t = (ar + fr + x[_R_RIGHT[j]] + _K_RIGHT[rnd]) & m
        s = _S_RIGHT[j]
        t = (((t << s) | (t >> (32 - s))) + er) & m
        ar, er, dr, cr, br = er, dr, ((cr << 10) | (cr >> 22)) & m, br, t
    t = (h[1] + cl + dr) & m
    h[1] = (h[2] + dl + er) & m
    h[2] = (h[3] + el + ar) & m
    h[3] = (h[4] + al + br) & m
    h[4] = (h[0] + bl + cr) & m
    h[0] = t


def ripemd160(data: bytes | bytearray | memoryview) -> bytes:
    """RIPEMD-160 digest of ``data``."""
    data = bytes(data)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    # MD4-style padding: 0x80, zeros to 56 mod 64, then the bit length (little-endian).
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    for off in range(0, len(padded), 64):
        _compress(h, padded[off : off + 64])
    return struct.pack("<5I", *h)
