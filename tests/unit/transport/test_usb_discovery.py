"""Board discovery: chip-id reply decoding, busy ports, USB scan over the sim backend, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from appliance.cli import main
from drivers.asic.bm13xx import frames
from drivers.asic.bm13xx.chips import get_chip
from drivers.sim.chips import SimChain
from drivers.sim.usb_backend import SimUsbBackend
from drivers.transport import discovery
from drivers.transport.usb import UsbTransport


def _chip_id_replies(model: str, n: int) -> bytes:
    spec = get_chip(model)
    return b"".join(
        frames.register_reply(spec, spec.chip_id_value, i * (256 // n), 0x00) for i in range(n)
    )


@pytest.mark.parametrize(("model", "n"), [("BM1370", 4), ("BM1397", 1), ("BM1366", 6)])
def test_discovery_decodes_chip_id_replies(model: str, n: int) -> None:
    probe = discovery.decode_chip_id_replies(b"\x00\x13" + _chip_id_replies(model, n))
    assert (probe.model, probe.chip_count) == (model, n)


def test_discovery_ignores_noise_and_bad_crc() -> None:
    assert discovery.decode_chip_id_replies(b"").model is None
    assert discovery.decode_chip_id_replies(b"hello world\xaa\x55\x12\x34").chip_count == 0
    good = _chip_id_replies("BM1368", 2)
    corrupt = bytearray(good)
    corrupt[5] ^= 0x01  # first reply's CRC no longer holds
    probe = discovery.decode_chip_id_replies(bytes(corrupt))
    assert (probe.model, probe.chip_count) == ("BM1368", 1)


def test_discovery_probe_over_usb_transport() -> None:
    backend = SimUsbBackend(lambda: SimChain("BM1370", 4, hashrate_hps=0))
    transport = UsbTransport.open(0x0403, 0x6015, backend=backend)
    probe = discovery.probe_transport(transport, timeout=0.5)
    transport.close()
    assert (probe.model, probe.chip_count, probe.bytes_received) == ("BM1370", 4, 44)
    # Only the chip-id read was written to the chips.
    assert backend.chain.stats.garbage_bytes_rx == 0


def test_discovery_scan_finds_usb_stick_through_sim_backend() -> None:
    backend = SimUsbBackend(lambda: SimChain("BM1397", 1, hashrate_hps=0))
    result = discovery.scan(serial_ports=False, sim=False, usb_backend=backend, timeout=0.3)
    assert [b.to_dict()["source"] for b in result.boards] == ["usb"]
    stick = result.boards[0]
    assert stick.usb_id == "0403:6015" and stick.bridge == "FTDI FT-X"
    assert (stick.chip_model, stick.chip_count, stick.board) == ("BM1397", 1, "compac-f")
    assert stick.serial_number == "BLVMSIM0001"
    assert stick.status == "ok"


def test_discovery_pty_without_chips_is_no_answer_and_busy_when_held() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        found = discovery.probe_serial_port(path, timeout=0.1)
        assert found.status == "no-answer"
        assert os.read(master, 64) == discovery.CHIP_ID_READ  # exactly the chip-id read
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import os, time; fd = os.open({path!r}, os.O_RDONLY | os.O_NOCTTY); time.sleep(30)",
            ]
        )
        try:
            for _ in range(100):
                if discovery.port_users(path):
                    break
                time.sleep(0.05)
            busy = discovery.probe_serial_port(path, timeout=0.1)
            assert busy.status == "busy" and str(holder.pid) in busy.detail
        finally:
            holder.kill()
            holder.wait()
    finally:
        os.close(master)
        os.close(slave)


def test_discovery_cli_json_for_an_explicit_port(capsys) -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        code = main(
            [
                "hw",
                "scan",
                "--json",
                "--no-usb",
                "--no-serial",
                "--no-sim",
                "--port",
                path,
                "--timeout",
                "0.1",
            ]
        )
    finally:
        os.close(master)
        os.close(slave)
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["found"] == 0
    assert data["boards"][0]["port"] == path
    assert data["boards"][0]["status"] == "no-answer"


def test_discovery_leaves_kernel_bound_bridges_to_the_tty_path() -> None:
    backend = SimUsbBackend(lambda: SimChain("BM1397", 1, hashrate_hps=0), kernel_driver=True)
    result = discovery.scan(serial_ports=False, sim=False, usb_backend=backend, timeout=0.2)
    (found,) = result.boards
    assert found.status == "via-tty" and found.chip_count == 0
    assert backend.kernel_driver is True  # never detached by a scan
    assert backend.control_log == []  # and nothing sent to the bridge
