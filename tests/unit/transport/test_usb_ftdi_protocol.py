"""FTDI bridge protocol: divisor encoding, request layouts, modem-status framing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.transport import ftdi


@pytest.mark.parametrize(
    ("baud", "w_value", "w_index", "actual"),
    [
        (115_200, 0x001A, 0, 115_385),  # divisor 26 from 3 MHz
        (1_000_000, 0x0003, 0, 1_000_000),
        (1_500_000, 0x0002, 0, 1_500_000),  # BM1397 over FTDI: divisor 2
        (2_000_000, 0x0001, 0, 2_000_000),  # special value 1 = divisor 1.5
        (3_000_000, 0x0000, 0, 3_000_000),  # special value 0 = divisor 1
        (9_600, 0x4138, 0, 9_600),  # 312.5: fraction 1/2 -> code 1
        (38_400, 0xC04E, 0, 38_400),  # 78.125: fraction 1/8 -> code 3
        (57_600, 0xC034, 0, 57_554),  # 52.125
        (460_800, 0x4006, 0, 461_538),  # 6.5
        (921_600, 0x8003, 0, 923_077),  # 3.25: fraction 1/4 -> code 2
        (29_814, 0x4064, 1, 29_814),  # 100.625: code 5 spills bit 16 into wIndex
    ],
)
def test_ftdi_divisor_encoding(baud: int, w_value: int, w_index: int, actual: int) -> None:
    setting = ftdi.encode_baud(baud)
    assert (setting.w_value, setting.w_index) == (w_value, w_index)
    assert setting.actual == actual
    assert ftdi.decode_baud(w_value, w_index) == actual


def test_ftdi_sub_two_divisors_snap_to_valid_rates() -> None:
    # 2.4 Mbaud would need divisor 1.25, which the chip does not have.
    assert ftdi.encode_baud(2_400_000).actual in (2_000_000, 3_000_000)
    assert ftdi.encode_baud(1_700_000).actual == 1_500_000


def test_ftdi_rejects_impossible_rates() -> None:
    with pytest.raises(ftdi.FtdiError):
        ftdi.encode_baud(4_000_000)
    with pytest.raises(ftdi.FtdiError):
        ftdi.encode_baud(100)
    with pytest.raises(ftdi.FtdiError):
        ftdi.encode_baud(0)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=200, max_value=1_500_000))
def test_ftdi_encoding_roundtrip_within_an_eighth(baud: int) -> None:
    setting = ftdi.encode_baud(baud)
    assert ftdi.decode_baud(setting.w_value, setting.w_index) == setting.actual
    eighths = round(ftdi.BAUD_BASE * 8 / setting.actual)
    # Rounding to the nearest eighth (and the real rate to whole baud): half an eighth at most.
    assert abs(setting.error) <= 0.5 / eighths + 1 / baud
    assert setting.w_index in (0, 1)
    assert 0 <= setting.w_value <= 0xFFFF


def test_ftdi_request_layouts() -> None:
    assert ftdi.reset_request() == ftdi.ControlRequest(0x40, 0, 0, 0)
    assert ftdi.purge_rx_request() == ftdi.ControlRequest(0x40, 0, 1, 0)
    assert ftdi.purge_tx_request() == ftdi.ControlRequest(0x40, 0, 2, 0)
    assert ftdi.data_8n1_request() == ftdi.ControlRequest(0x40, 4, 0x0008, 0)
    assert ftdi.flow_none_request() == ftdi.ControlRequest(0x40, 2, 0, 0)
    assert ftdi.latency_request(2) == ftdi.ControlRequest(0x40, 9, 2, 0)
    # CBUS bit-bang reset of the Compac F: mode 0x20, CB1 high / low.
    assert ftdi.cbus_request(0xF2) == ftdi.ControlRequest(0x40, 0x0B, 0x20F2, 0)
    assert ftdi.cbus_request(0xF0) == ftdi.ControlRequest(0x40, 0x0B, 0x20F0, 0)
    with pytest.raises(ftdi.FtdiError):
        ftdi.latency_request(0)


def test_ftdi_init_sequence_order() -> None:
    reqs = ftdi.init_requests(115_200)
    assert [(r.b_request, r.w_value) for r in reqs] == [
        (0, 0),  # reset
        (4, 8),  # 8N1
        (3, 26),  # baud divisor
        (2, 0),  # no flow control
        (9, 2),  # latency timer
        (0, 1),  # purge RX
        (0, 2),  # purge TX
    ]


def _packet(status: bytes, payload: bytes) -> bytes:
    assert len(payload) <= 62
    return status + payload


def test_ftdi_strip_modem_status_across_packets() -> None:
    a = bytes(range(62))
    b = bytes(range(100, 162))
    c = b"\xaa\x55tail"
    transfer = _packet(b"\x01\x60", a) + _packet(b"\x11\x60", b) + _packet(b"\x01\x62", c)
    stats = ftdi.InPacketStats()
    assert ftdi.strip_modem_status(transfer, stats=stats) == a + b + c
    assert stats.packets == 3
    assert stats.line_errors == 1  # overrun bit 0x02 in the last packet
    assert stats.last_line_status == 0x62


def test_ftdi_status_only_packets_carry_no_data() -> None:
    assert ftdi.strip_modem_status(b"\x01\x60") == b""
    assert ftdi.strip_modem_status(b"") == b""
    # A frame that straddles two packets comes back contiguous.
    frame = bytes.fromhex("aa55139700000000000000")
    first = b"\x00" * 55 + frame[:7]
    second = frame[7:]
    transfer = b"\x01\x60" + first + b"\x01\x60" + second
    assert ftdi.strip_modem_status(transfer).endswith(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_ftdi_framing_roundtrip(payload: bytes) -> None:
    framed = ftdi.frame_in_packets(payload)
    assert ftdi.strip_modem_status(framed) == payload
    full, rest = divmod(len(framed), ftdi.PACKET_SIZE)
    assert all(framed[i * 64 : i * 64 + 2] == ftdi.IDLE_STATUS for i in range(full))
    if rest:
        assert framed[full * 64 : full * 64 + 2] == ftdi.IDLE_STATUS
