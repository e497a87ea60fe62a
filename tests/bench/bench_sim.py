"""Benchmark the simulated board: hashing speed, CPU use idle and busy, pty round trip.

    python tests/bench/bench_sim.py [--quick] [--seconds S]

Prints one JSON object. The CPU fractions are of one core, measured with the board's
loop in a thread of this (otherwise idle) process.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import serial

from drivers import sha256_state
from drivers.sim import hasher
from drivers.sim import testing as host
from drivers.sim.board import SimBoardConfig
from drivers.sim.pty_board import PtyBoard

HEADER = bytes(4) + bytes(range(64)) + bytes(12)


def scanner_rate(scanner, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        scanner.scan(n, 2000, 128, 1, 0)
        n += 2000
    return n / (time.perf_counter() - start)


def cpu_fraction(seconds: float) -> float:
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def board_numbers(seconds: float) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    config = SimBoardConfig(model="BM1370", chips=4, hashrate_hps=1e9, seed=1)
    board = PtyBoard(config, board_id="bench", base_dir=base, publish=False)
    board.open()
    stop = threading.Event()
    thread = threading.Thread(target=board.run, kwargs={"should_stop": stop.is_set}, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        idle = cpu_fraction(seconds)
        with serial.Serial(board.port, 115200, timeout=1.0) as port:
            rtts = []
            for _ in range(20):
                start = time.perf_counter()
                port.write(host.read_register(0x00, address=0))
                if len(port.read(11)) == 11:
                    rtts.append(time.perf_counter() - start)
            port.write(host.bm136x_job(0x18, HEADER))
            time.sleep(0.3)
            hashes0, t0 = board.board.chain.stats.real_hashes, time.monotonic()
            busy = cpu_fraction(seconds)
            achieved = (board.board.chain.stats.real_hashes - hashes0) / (time.monotonic() - t0)
    finally:
        stop.set()
        thread.join(5)
        board.close()
    rtts.sort()
    return {
        "idle_cpu_fraction": round(idle, 4),
        "busy_cpu_fraction_cap_0_5": round(busy, 4),
        "busy_real_hashes_per_s": round(achieved),
        "register_read_rtt_ms_median": round(1000 * rtts[len(rtts) // 2], 3) if rtts else None,
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (CI)")
    parser.add_argument("--seconds", type=float, help="duration of each measurement")
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    state = sha256_state.midstate_words(HEADER[:64])
    result: dict[str, object] = {
        "header_scanner_hashes_per_s": round(
            scanner_rate(hasher.HeaderScanner(HEADER[:64], HEADER[64:76]), seconds)
        ),
        "midstate_scanner_hashes_per_s": round(
            scanner_rate(hasher.MidstateScanner(state, HEADER[64:76]), seconds)
        ),
        "midstate_uses_openssl": sha256_state.openssl_available(),
    }
    saved = sha256_state._OPENSSL_TRANSFORM
    sha256_state._OPENSSL_TRANSFORM = None
    try:
        result["midstate_scanner_pure_python_hashes_per_s"] = round(
            scanner_rate(hasher.MidstateScanner(state, HEADER[64:76]), min(seconds, 1.0))
        )
    finally:
        sha256_state._OPENSSL_TRANSFORM = saved
    result.update({f"pty_board_{k}": v for k, v in board_numbers(seconds).items()})
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
