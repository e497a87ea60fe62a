"""Simulated chips answer host command frames byte-exactly, as silicon does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.asic.bm13xx.crc import crc5
from drivers.asic.bm13xx.registers import misc_control_baud
from drivers.sim import testing as host
from drivers.sim.chips import (
    SimChain,
    pll_frequency,
    reply_crc_byte,
    ticket_mask_difficulty,
)
from drivers.sim.errors import SimConfigError
from drivers.sim.models import MODELS, get_model

# Host frames from the reference table (shared/reference/bm13xx.md).
READ_CHIP_ID_ALL = bytes.fromhex("55AA52050000 0A")
CHAIN_INACTIVE = bytes.fromhex("55AA53050000 03")
SET_ADDRESS_0 = bytes.fromhex("55AA40050000 1C")
VERSION_MASK = bytes.fromhex("55AA510900A4 9000FFFF 1C")
TICKET_256 = bytes.fromhex("55AA51090014 000000FF 08")
FAST_UART_1M = bytes.fromhex("55AA51090028 11300200 03")
WRITE_ONE_A8 = bytes.fromhex("55AA410900A8 000701F0 15")
MISC_DEFAULT = bytes.fromhex("55AA51090018 00007A31 15")
PLL_525 = bytes.fromhex("55AA51090008 40A80230 03")


def enumerate_chain(chain: SimChain) -> list[int]:
    n = len(chain.chips)
    interval = 256 // n
    chain.feed(CHAIN_INACTIVE)
    for i in range(n):
        chain.feed(host.set_address(i * interval))
    return [c.address for c in chain.chips]


def test_reference_host_frames_match_our_builders():
    assert host.read_register(0x00) == READ_CHIP_ID_ALL
    assert host.chain_inactive() == CHAIN_INACTIVE
    assert host.set_address(0) == SET_ADDRESS_0
    assert host.write_register(0xA4, 0x9000FFFF) == VERSION_MASK
    assert host.write_register(0xA8, 0x000701F0, address=0) == WRITE_ONE_A8


def test_bm1368_chip_id_reply_matches_reference_vector():
    chain = SimChain("BM1368", 1)
    chain.feed(READ_CHIP_ID_ALL)
    assert chain.take_output() == bytes.fromhex("AA 55 13 68 00 00 00 00 00 00 0F")


@pytest.mark.parametrize("n_chips", [1, 4])
def test_bm1370_enumeration_one_reply_per_chip(n_chips):
    chain = SimChain("BM1370", n_chips)
    chain.feed(READ_CHIP_ID_ALL)
    out = chain.take_output()
    assert len(out) == 11 * n_chips
    for i in range(n_chips):
        frame = out[11 * i : 11 * (i + 1)]
        assert frame[:10] == bytes.fromhex("AA551370000000000000")
        assert frame[10] & 0x80 == 0  # register reply, not a nonce
        assert crc5(frame[2:]) == 0


def test_bm1397_reply_is_nine_bytes():
    chain = SimChain("BM1397", 2)
    chain.feed(READ_CHIP_ID_ALL)
    replies = host.parse_replies(chain.take_output(), 9)
    assert [r.value >> 16 for r in replies] == [0x1397, 0x1397]
    assert all(r.crc_ok and not r.is_nonce for r in replies)


@given(body=st.binary(min_size=6, max_size=8), flags=st.sampled_from([0x00, 0x80, 0xE0]))
@settings(max_examples=300, deadline=None)
def test_reply_crc_byte_makes_residue_zero(body, flags):
    byte = reply_crc_byte(body, flags)
    assert byte & 0xE0 == flags
    assert crc5(body + bytes((byte,))) == 0
    # ...and it is the only such byte with those flag bits.
    others = [c for c in range(32) if crc5(body + bytes((flags | c,))) == 0]
    assert others == [byte & 0x1F]


def test_address_assignment_gives_each_chip_its_slot():
    chain = SimChain("BM1370", 4)
    assert enumerate_chain(chain) == [0, 64, 128, 192]
    chain.feed(host.read_register(0x00, address=128))
    (reply,) = host.parse_replies(chain.take_output(), 11)
    assert reply.byte6 == 128 and reply.byte7 == 0x00 and reply.value == 0x13700000


def test_set_address_without_chain_inactive_changes_nothing():
    chain = SimChain("BM1366", 2)
    chain.feed(host.set_address(0x40))
    assert [c.address for c in chain.chips] == [0, 0]


def test_register_write_single_and_broadcast_read_back():
    chain = SimChain("BM1368", 3)
    enumerate_chain(chain)  # 0, 85, 170
    chain.feed(host.write_register(0x3C, 0x8000_8540))
    chain.feed(host.write_register(0x3C, 0x1234_5678, address=85))
    chain.feed(host.read_register(0x3C))
    replies = host.parse_replies(chain.take_output(), 11)
    assert [(r.byte6, r.byte7, r.value) for r in replies] == [
        (0, 0x3C, 0x8000_8540),
        (85, 0x3C, 0x1234_5678),
        (170, 0x3C, 0x8000_8540),
    ]
    assert all(r.crc_ok for r in replies)


def test_chip_id_is_read_only():
    chain = SimChain("BM1370", 1)
    chain.feed(host.write_register(0x00, 0xDEADBEEF))
    chain.feed(host.read_register(0x00))
    (reply,) = host.parse_replies(chain.take_output(), 11)
    assert reply.value == 0x13700000


def test_reference_register_writes_take_effect():
    chain = SimChain("BM1370", 2)
    chip = chain.chips[0]
    for frame in (VERSION_MASK, TICKET_256, PLL_525, MISC_DEFAULT):
        chain.feed(frame)
    assert chip.version_mask == 0x1FFFE000
    assert chip.ticket_difficulty == 256
    assert chip.frequency_mhz == pytest.approx(525.0)
    assert chain.baud == pytest.approx(115_740, abs=10)
    chain.feed(FAST_UART_1M)
    assert chain.baud == 1_000_000
    assert chain.stats.crc_errors_rx == 0


def test_pll_register_to_frequency():
    bm1370, bm1397 = get_model("BM1370"), get_model("BM1397")
    assert pll_frequency(bm1370, 0x40A80230) == pytest.approx(525.0)
    # BM1397 stores post-dividers plainly: fbdiv 0x88=136, refdiv 2, p1=2, p2=1 -> 850/1 /2
    assert pll_frequency(bm1397, 0x40880221) == pytest.approx(25 * 136 / (2 * 2 * 1))
    assert pll_frequency(bm1397, 0x40880200) == 0.0  # zero divider: PLL off


def test_ticket_mask_decoding():
    assert ticket_mask_difficulty(0x000000FF) == 256
    assert ticket_mask_difficulty(0x000080FF) == 512
    assert ticket_mask_difficulty(0) == 1


def test_bm1397_baud_register():
    assert misc_control_baud(0x00007A31) == pytest.approx(115_740, abs=10)
    assert misc_control_baud(0x00006031) == 3_125_000
    assert misc_control_baud(0x00006131) == 1_562_500
    chain = SimChain("BM1397", 1)
    chain.feed(host.write_register(0x18, 0x00006031))
    assert chain.baud == 3_125_000
    chain.feed(host.write_register(0x28, 0x11300200))  # no fast-UART register on BM1397
    assert chain.baud == 3_125_000


def test_unknown_fast_uart_value_leaves_no_usable_baud():
    chain = SimChain("BM1366", 1)
    chain.feed(host.write_register(0x28, 0x11300100))
    assert chain.baud < 1000


def test_bad_crc_frames_are_ignored_and_counted():
    chain = SimChain("BM1370", 1)
    bad = bytearray(READ_CHIP_ID_ALL)
    bad[-1] ^= 0x01
    chain.feed(bytes(bad))
    assert chain.take_output() == b""
    assert chain.stats.crc_errors_rx == 1
    chain.feed(READ_CHIP_ID_ALL)
    assert len(chain.take_output()) == 11


def test_parser_resyncs_after_garbage_and_split_frames():
    chain = SimChain("BM1370", 1)
    stream = b"\x00\x55\x13\xff" + READ_CHIP_ID_ALL + b"\x55" + READ_CHIP_ID_ALL
    for byte in stream:  # one byte at a time, as a slow UART delivers them
        chain.feed(bytes((byte,)))
    assert len(host.parse_replies(chain.take_output(), 11)) == 2


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_parser_survives_random_bytes(data):
    chain = SimChain("BM1370", 2)
    chain.advance(0.0)
    chain.feed(data)
    chain.advance(0.01)
    chain.advance(0.1)  # an unfinished frame times out like on the chip's UART
    chain.feed(READ_CHIP_ID_ALL)
    replies = host.parse_replies(chain.take_output(), 11)
    # A frame completing inside garbage is legal; the final read must still be answered.
    assert len(replies) >= 2
    assert all(r.crc_ok for r in replies)


def test_partial_frame_times_out():
    chain = SimChain("BM1370", 1)
    chain.advance(0.0)
    chain.feed(bytes.fromhex("55AA2156"))  # a job frame that never completes
    chain.advance(0.01)
    chain.feed(READ_CHIP_ID_ALL)  # swallowed into the pending job, as on a real UART
    assert chain.take_output() == b""
    chain.advance(0.2)
    chain.feed(READ_CHIP_ID_ALL)
    assert len(chain.take_output()) == 11


@given(reg=st.integers(0x01, 0xFF), value=st.integers(0, 0xFFFFFFFF))
@settings(max_examples=200, deadline=None)
def test_any_plain_register_reads_back(reg, value):
    if reg in (0x04, 0x4C, 0x88, 0x89, 0x8A, 0x8B, 0x8C):
        return  # counters are computed, not stored
    chain = SimChain("BM1370", 1)
    chain.feed(host.write_register(reg, value, address=0))
    chain.feed(host.read_register(reg, address=0))
    (reply,) = host.parse_replies(chain.take_output(), 11)
    assert (reply.value, reply.byte7) == (value, reg)


@pytest.mark.parametrize(
    ("model", "job_id", "sub", "byte7"),
    [
        ("BM1366", 0x48, 5, 0x4D),
        ("BM1368", 0x18, 3, 0x33),
        ("BM1370", 0x78, 0xF, 0xFF),
        ("BM1397", 0x0C, 2, 0x0E),
    ],
)
def test_reply_job_id_encoding(model, job_id, sub, byte7):
    m = MODELS[model]
    assert m.encode_reply_id(job_id, sub) == byte7
    # Host-side decoding from the reference table gives the job id back.
    if model == "BM1366":
        assert byte7 & 0xF8 == job_id
    elif model == "BM1397":
        assert byte7 & 0xFC == job_id
    else:
        assert (byte7 & 0xF0) >> 1 == job_id


def test_bad_settings_are_rejected():
    with pytest.raises(SimConfigError):
        SimChain("BM9999", 1)
    with pytest.raises(SimConfigError):
        SimChain("BM1370", 0)
    with pytest.raises(SimConfigError):
        SimChain("BM1370", 1, sim_ticket_difficulty=0)
