"""Every UART/chain fault is observable from the host side of the wire."""

from __future__ import annotations

import pytest

from drivers.sim import testing as host
from drivers.sim.chips import SimChain
from drivers.sim.errors import SimConfigError
from drivers.sim.faults import Fault, FaultState


def chain(n: int = 4, **kw) -> SimChain:
    return SimChain("BM1370", n, seed=3, **kw)


def test_crc_fault_corrupts_reply_crcs():
    c = chain()
    c.faults.apply("crc")
    c.feed(host.read_register(0x00))
    replies = host.parse_replies(c.take_output(), 11)
    assert len(replies) == 4 and not any(r.crc_ok for r in replies)
    c.faults.apply("crc", on=False)
    c.feed(host.read_register(0x00))
    assert all(r.crc_ok for r in host.parse_replies(c.take_output(), 11))


def test_partial_crc_rate():
    c = chain(1)
    c.faults.apply("crc", value=0.5)
    bad = 0
    for _ in range(200):
        c.feed(host.read_register(0x00))
        bad += not host.parse_replies(c.take_output(), 11)[0].crc_ok
    assert 60 < bad < 140
    assert c.stats.corrupted_tx == bad


def test_dropped_bytes_shorten_the_stream():
    c = chain()
    c.faults.apply("drop", value=0.2)
    c.feed(host.read_register(0x00))
    out = c.take_output()
    assert len(out) < 44
    assert c.stats.bytes_dropped_tx == 44 - len(out)


def test_chip_dropout_stops_one_chip_answering():
    c = chain()
    c.faults.apply("chip-dropout", value=2)
    c.feed(host.read_register(0x00))
    assert len(host.parse_replies(c.take_output(), 11)) == 3
    # Enumeration then assigns addresses to the chips that still answer.
    c.feed(host.chain_inactive())
    for addr in (0, 64, 128):
        c.feed(host.set_address(addr))
    assert [ch.address for ch in c.chips if ch.index != 2] == [0, 64, 128]
    c.faults.apply("chip-dropout", on=False, value=2)
    c.feed(host.read_register(0x00))
    assert len(host.parse_replies(c.take_output(), 11)) == 4


def test_dropped_out_chip_does_not_hash():
    c = chain(2, hashrate_hps=10_000, sim_ticket_difficulty=1e-6)
    c.faults.apply("chip-dropout", value=1)
    c.feed(host.bm136x_job(0x18, bytes(80)))
    c.advance(0.0)
    c.advance(0.5)
    assert c.chips[1].real_hashes == 0 and c.chips[0].real_hashes > 0


def test_fault_names_and_values_are_checked():
    faults = FaultState()
    with pytest.raises(SimConfigError, match="known faults"):
        faults.apply("gremlins")
    with pytest.raises(SimConfigError):
        faults.apply("crc", value=1.5)
    with pytest.raises(SimConfigError):
        faults.apply("chip-dropout", value=-1)
    for fault in Fault:
        faults.apply(fault.value)
    assert faults.fan_stalled and faults.sensor_failed and faults.over_current
    assert faults.unplug_seconds == 1.0
    faults.clear()
    assert faults.as_dict() == FaultState().as_dict()
