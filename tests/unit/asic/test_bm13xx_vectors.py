"""Every byte example of the BM13xx reference as a test vector."""

from __future__ import annotations

import pytest

from drivers.asic.bm13xx import frames, registers
from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.bm13xx.crc import crc5, crc16
from drivers.asic.bm13xx.pll import encode_pll, find_pll
from drivers.asic.bm13xx.registers import Register


def h(s: str) -> bytes:
    return bytes.fromhex(s)


def test_crc16_check_value():
    assert crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (lambda: frames.read_register(Register.CHIP_ID), "55 AA 52 05 00 00 0A"),
        (frames.chain_inactive, "55 AA 53 05 00 00 03"),
        (lambda: frames.set_address(0), "55 AA 40 05 00 00 1C"),
        (
            lambda: frames.write_register(
                Register.VERSION_ROLLING, registers.version_mask_bytes(0x1FFFE000)
            ),
            "55 AA 51 09 00 A4 90 00 FF FF 1C",
        ),
        (
            lambda: frames.write_register(Register.TICKET_MASK, registers.ticket_mask_bytes(256)),
            "55 AA 51 09 00 14 00 00 00 FF 08",
        ),
        (
            lambda: frames.write_register(Register.FAST_UART, get_chip("BM1370").fast_baud_value),
            "55 AA 51 09 00 28 11 30 02 00 03",
        ),
        (
            lambda: frames.write_register(Register.REG_A8, h("000701F0"), chip_address=0),
            "55 AA 41 09 00 A8 00 07 01 F0 15",
        ),
        (
            lambda: frames.write_register(
                Register.MISC_CONTROL, get_chip("BM1366").misc_control_default
            ),
            "55 AA 51 09 00 18 00 00 7A 31 15",
        ),
        (
            lambda: frames.write_register(
                Register.PLL0, encode_pll(get_chip("BM1370"), find_pll(get_chip("BM1370"), 525))
            ),
            "55 AA 51 09 00 08 40 A8 02 30 03",
        ),
    ],
)
def test_reference_command_frames(built, expected):
    frame = built()
    assert frame == h(expected)
    assert crc5(frame[2:-1]) == frame[-1]
    parsed = frames.parse_command(frame)
    assert isinstance(parsed, frames.CommandFrame)
    assert parsed.header == frame[2]


def test_command_headers():
    assert [int(x) for x in frames.Header] == [0x40, 0x41, 0x42, 0x51, 0x52, 0x53, 0x21]


def test_ticket_masks():
    assert registers.ticket_mask_bytes(256) == h("000000FF")
    assert registers.ticket_mask_bytes(512) == h("000080FF")
    assert registers.ticket_mask_bytes(300) == h("000000FF")  # rounds down to 256
    assert registers.ticket_mask_difficulty(h("000080FF")) == 512


def test_version_mask_register():
    assert registers.version_mask_bytes(0x1FFFE000) == h("9000FFFF")
    assert registers.version_mask_from_bytes(h("9000FFFF")) == 0x1FFFE000


def test_bm1370_pll_525():
    spec = get_chip("BM1370")
    setting = find_pll(spec, 525)
    assert (setting.fbdiv, setting.refdiv, setting.postdiv1, setting.postdiv2) == (168, 2, 4, 1)
    assert setting.frequency_mhz == 525.0
    assert encode_pll(spec, setting) == h("40A80230")


def test_baud_values():
    assert registers.misc_control_baud(h("00007A31")) in range(115_700, 115_760)
    assert registers.misc_control_baud(h("00006031")) == 3_125_000
    assert registers.misc_control_baud(h("00006131")) == 1_562_500  # FTDI variant
    bm1397 = get_chip("BM1397")
    assert bm1397.fast_baud_register == Register.MISC_CONTROL
    assert bm1397.fast_baud_value == h("00006031") and bm1397.fast_baud == 3_125_000
    for model in ("BM1366", "BM1368", "BM1370"):
        spec = get_chip(model)
        assert spec.fast_baud_register == 0x28 and spec.fast_baud == 1_000_000


def test_reference_reply_frame():
    frame = h("AA 55 13 68 00 00 00 00 00 00 0F")
    assert crc5(frame[2:]) == 0
    spec = get_chip("BM1368")
    reply = frames.parse_reply(spec, frame)
    assert reply == frames.RegisterReply(value=0x13680000, chip_address=0, register=0)
    assert frames.register_reply(spec, 0x13680000, 0, 0) == frame


@pytest.mark.parametrize(
    ("model", "tx_ids", "byte7", "rx"),
    [
        ("BM1366", [8, 16, 24], 0x8B, (0x88, 0x03)),
        ("BM1368", [24, 48, 72], (48 << 1 & 0xF0) | 0x0A, (48, 0x0A)),
        ("BM1370", [24, 48, 72], 0xF5, (0x78, 0x05)),
        ("BM1397", [4, 8, 12], 0x0E, (0x0C, 0x02)),
    ],
)
def test_job_id_encodings(model, tx_ids, byte7, rx):
    spec = get_chip(model)
    jid, ids = 0, []
    for _ in tx_ids:
        jid = spec.next_job_id(jid)
        ids.append(jid)
    assert ids == tx_ids
    assert spec.decode_reply_id(byte7) == rx
    assert spec.encode_reply_id(*rx) == byte7


def test_job_id_formulas_match_reference():
    for model, step in (("BM1366", 8), ("BM1368", 24), ("BM1370", 24), ("BM1397", 4)):
        spec = get_chip(model)
        for prev in range(0, 128, 4):
            assert spec.next_job_id(prev) == (prev + step) % 128
    for b7 in range(256):
        assert get_chip("BM1366").decode_reply_id(b7) == (b7 & 0xF8, b7 & 0x07)
        assert get_chip("BM1370").decode_reply_id(b7) == ((b7 & 0xF0) >> 1, b7 & 0x0F)
        assert get_chip("BM1397").decode_reply_id(b7) == (b7 & 0xFC, b7 & 0x03)


def test_nonce_reply_fields():
    spec = get_chip("BM1370")
    # nonce bytes on the wire 12 34 56 78: header nonce 0x78563412, nonce_h 0x12345678
    frame = frames.nonce_reply(spec, 0x78563412, job_id=48, sub=3, version_bits=0x1234 << 13)
    assert frame[2:6] == h("12345678") and frame[8:10] == h("1234")
    assert frame[-1] & 0x80
    reply = frames.parse_reply(spec, frame)
    assert isinstance(reply, frames.NonceReply)
    assert reply.nonce == 0x78563412
    assert reply.core_id == (0x12345678 >> 25) & 0x7F
    assert reply.chip_address == (0x12345678 >> 17) & 0xFF
    assert reply.job_id == 48 and reply.sub == 3
    assert reply.version_bits == 0x1234 << 13


def test_job_packet_lengths():
    job = frames.HeaderJob(24, 0x20000000, bytes(range(32)), bytes(range(32, 64)), 1, 2)
    frame = job.frame()
    assert len(frame) == 88 and frame[2] == 0x21 and frame[3] == 0x56
    mjob = frames.MidstateJob(4, (bytes(32),) * 4, b"abcd", 1, 2)
    mframe = mjob.frame()
    assert mframe[3] == 0x96 and len(mframe) - 6 == 146


def test_header_job_field_order():
    merkle = bytes(range(32))
    prev = bytes(range(100, 132))
    body = frames.HeaderJob(0x18, 0x20000004, prev, merkle, 0x11223344, 0x1703A30C).body()
    assert body[0] == 0x18 and body[1] == 1
    assert body[2:6] == b"\x00" * 4
    assert body[6:10] == (0x1703A30C).to_bytes(4, "little")
    assert body[10:14] == (0x11223344).to_bytes(4, "little")
    assert body[14:18] == merkle[28:32] and body[42:46] == merkle[0:4]  # words reversed
    assert body[46:50] == prev[28:32] and body[74:78] == prev[0:4]
    assert body[78:82] == (0x20000004).to_bytes(4, "little")
