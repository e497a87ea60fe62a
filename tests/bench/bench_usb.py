"""USB transport benchmarks over the simulated FTDI bridge (pyusb custom backend).

Run: ``python tests/bench/bench_usb.py [--quick]``; prints one JSON object.

- ``chip_id_roundtrip_ms_*``: write the broadcast chip-id read, read until every chip's
  reply arrived (USB transport, FTDI status stripping, sim chain) — median and p95.
- ``job_write_per_s``: BM1397 midstate job frames (150 bytes) pushed through bulk OUT.
- ``strip_mb_per_s``: modem-status stripping of 64-byte IN packets alone.
- ``divisor_encodings_per_s``: FTDI baud divisor encodings.
These measure the host-side stack; the simulated bridge adds no USB frame timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from drivers.sim.chips import SimChain
from drivers.sim.usb_backend import SimUsbBackend
from drivers.transport import ftdi
from drivers.transport.usb import UsbTransport

CHIP_ID_READ = bytes.fromhex("55aa520500000a")


def _roundtrips(rounds: int, chips: int) -> list[float]:
    backend = SimUsbBackend(lambda: SimChain("BM1370", chips, hashrate_hps=0))
    t = UsbTransport.open(ftdi.VID_FTDI, ftdi.PID_FTX, backend=backend)
    want = 11 * chips
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        t.write(CHIP_ID_READ)
        got = 0
        while got < want:
            got += len(t.read(0.5))
        out.append((time.perf_counter() - start) * 1000)
    t.close()
    return out


def _job_writes(seconds: float) -> float:
    backend = SimUsbBackend(lambda: SimChain("BM1397", 1, hashrate_hps=0))
    t = UsbTransport.open(ftdi.VID_FTDI, ftdi.PID_FTX, backend=backend)
    frame = b"\x55\xaa\x21\x96" + bytes(146) + b"\x00\x00"
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t.write(frame)
        n += 1
    rate = n / (time.perf_counter() - start)
    t.close()
    return rate


def _strip_rate(seconds: float) -> float:
    transfer = ftdi.frame_in_packets(bytes(range(256)) * 32)  # 8 KiB payload
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        ftdi.strip_modem_status(transfer)
        n += 1
    return n * len(transfer) / (time.perf_counter() - start) / 1e6


def _divisor_rate(seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        ftdi.encode_baud(115_200 + (n % 1000))
        n += 1
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run for CI")
    args = parser.parse_args(argv)
    rounds, seconds = (20, 0.2) if args.quick else (300, 2.0)
    rtt = sorted(_roundtrips(rounds, 4))
    result = {
        "chips": 4,
        "rounds": rounds,
        "chip_id_roundtrip_ms_median": round(statistics.median(rtt), 3),
        "chip_id_roundtrip_ms_p95": round(rtt[min(len(rtt) - 1, int(len(rtt) * 0.95))], 3),
        "job_write_per_s": round(_job_writes(seconds), 1),
        "strip_mb_per_s": round(_strip_rate(seconds), 2),
        "divisor_encodings_per_s": round(_divisor_rate(seconds), 1),
    }
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
