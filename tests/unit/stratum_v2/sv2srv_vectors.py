"""A hand-made work template and helpers that compute headers without the code under test."""

from __future__ import annotations

import hashlib
import struct

from appliance.stratum_v2.jobs import ChannelJobs, ChannelKind, WorkTemplate
from appliance.stratum_v2.shares import Channel, WorkerStats
from appliance.stratum_v2.vardiff import Vardiff

PREV = bytes(range(32))
NBITS = 0x1D00FFFF  # mainnet difficulty 1: no share here is a block
VERSION = 0x20000000
NTIME = 1_700_000_000
PREFIX = bytes.fromhex("0200000001" + "00" * 32 + "ffffffff" + "19" + "0301020304")
SUFFIX = bytes.fromhex("ffffffff01" + "00f2052a01000000" + "0151" + "00000000")
PATH = (bytes([0xAA]) * 32, bytes([0xBB]) * 32)
SPACE = 20


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def work(prev: bytes = PREV, nbits: int = NBITS, template_id: int = 1) -> WorkTemplate:
    return WorkTemplate(
        template_id, prev, nbits, VERSION, NTIME, PREFIX, SUFFIX, SPACE, PATH, transactions=()
    )


def root_by_hand(extranonce: bytes) -> bytes:
    h = sha256d(PREFIX + extranonce + SUFFIX)
    for sibling in PATH:  # coinbase is leaf 0: always the left child
        h = sha256d(h + sibling)
    return h


def header_by_hand(root: bytes, ntime: int, nonce: int, version: int = VERSION, nbits=NBITS):
    return struct.pack("<I", version) + PREV + root + struct.pack("<III", ntime, nbits, nonce)


def channel(kind: ChannelKind, target: int, channel_id: int = 7) -> Channel:
    unique = channel_id.to_bytes(4, "big")
    prefix = unique + bytes(SPACE - 4) if kind is ChannelKind.STANDARD else unique
    return Channel(
        channel_id,
        "worker.1",
        ChannelJobs(channel_id, kind, prefix),
        Vardiff(6.0, target),
        WorkerStats("worker.1"),
    )


def find_nonce(root: bytes, target: int, *, below: bool = True, start: int = 0) -> int:
    """First nonce whose header hash is <= target (or > target with below=False)."""
    nonce = start
    while True:
        value = int.from_bytes(sha256d(header_by_hand(root, NTIME, nonce)), "little")
        if (value <= target) == below:
            return nonce
        nonce += 1
