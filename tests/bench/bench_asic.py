"""ASIC driver benchmarks: frame codec rate, nonce verification rate, new-block latency.

Run: ``python tests/bench/bench_asic.py [--quick]``; prints one JSON object.

- ``encode_*_frames_per_s``: job frames (BM1370 header jobs, BM1397 midstate jobs with
  four host-computed midstates) and nonce-reply frames built per second.
- ``decode_frames_per_s``: ReplyDecoder throughput on a stream of nonce replies fed in
  4 KiB chunks.
- ``verify_*_nonces_per_s``: the host re-hash alone (midstate copy + 16 bytes + second
  SHA-256), and the whole driver path (decode, job lookup, dedup, re-hash, accounting).
- ``new_block_to_write_us``: ``AsicDriver.new_block(job)`` until the clean job's bytes
  are handed to the port, on an in-memory transport (write timestamped) and on a pty
  through SerialTransport (write returned, and bytes readable on the far side).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from drivers.asic.bm13xx import frames
from drivers.asic.bm13xx.chips import get_chip
from drivers.asic.chain import Chain
from drivers.asic.driver import AsicDriver
from drivers.asic.job import MiningJob
from drivers.asic.verify import HeaderHasher
from drivers.transport.memory import memory_pipe
from drivers.transport.serial import SerialTransport


def _job(i: int = 0, mask: int = 0x1FFFE000) -> MiningJob:
    return MiningJob(
        0x20000000,
        bytes(range(32)),
        i.to_bytes(4, "little") + bytes(range(28)),
        1_700_000_000 + i,
        0x1703A30C,
        mask,
    )


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - start)


def bench_encode(n: int) -> dict[str, float]:
    bm1370, bm1397 = get_chip("BM1370"), get_chip("BM1397")
    transport, _peer = memory_pipe(record=False)
    d70 = AsicDriver(transport, bm1370)
    d97 = AsicDriver(transport, bm1397)
    job = _job()

    def header_jobs(k: int) -> None:
        for i in range(k):
            d70.encode_job(job, (i * 24) % 128)

    def midstate_jobs(k: int) -> None:
        for i in range(k):
            d97.encode_job(job, (i * 4) % 128)

    def replies(k: int) -> None:
        for i in range(k):
            frames.nonce_reply(bm1370, i, 24, i & 15, (i & 0xFFFF) << 13)

    return {
        "encode_header_job_frames_per_s": _rate(header_jobs, n),
        "encode_midstate_job_frames_per_s": _rate(midstate_jobs, max(1, n // 20)),
        "encode_nonce_reply_frames_per_s": _rate(replies, n),
    }


def bench_decode(n: int) -> dict[str, float]:
    spec = get_chip("BM1370")
    stream = b"".join(frames.nonce_reply(spec, i * 7919, 24, i & 15, i << 13) for i in range(n))
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    decoder = frames.ReplyDecoder(spec)
    start = time.perf_counter()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    elapsed = time.perf_counter() - start
    assert count == n, (count, n)
    return {"decode_frames_per_s": n / elapsed}


def bench_verify(n: int) -> dict[str, float]:
    job = _job()
    hasher = HeaderHasher(job)
    versions = [0x20000000 | (v << 13) for v in range(16)]

    def raw(k: int) -> None:
        for i in range(k):
            hasher.hash_value(versions[i & 15], i)

    spec = get_chip("BM1370")
    transport, _peer = memory_pipe(record=False)
    # verify_difficulty 2^-32 accepts every hash, so every nonce walks the full accept path
    driver = AsicDriver(transport, spec, verify_difficulty=2.0**-32)
    driver.chain = Chain(spec, 4, time.monotonic())
    jid = driver.send_job(job)
    stream = b"".join(
        frames.nonce_reply(spec, i * 2654435761 % 2**32, jid, i & 15, (i & 15) << 13)
        for i in range(n)
    )
    start = time.perf_counter()
    got = 0
    for off in range(0, len(stream), 4096):
        got += len(driver.feed(stream[off : off + 4096]))
    elapsed = time.perf_counter() - start
    return {
        "verify_rehash_nonces_per_s": _rate(raw, n),
        "verify_driver_path_nonces_per_s": got / elapsed,
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median": statistics.median(samples) * 1e6,
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1e6,
    }


def bench_new_block_memory(model: str, n: int) -> dict[str, float]:
    spec = get_chip(model)
    transport, _peer = memory_pipe()
    driver = AsicDriver(transport, spec)
    driver.chain = Chain(spec, 1, time.monotonic())
    samples = []
    for i in range(n):
        job = _job(i)
        t0 = time.perf_counter()
        driver.new_block(job)
        samples.append(transport.writes[-1][0] - t0)
        transport.writes.clear()
    return _percentiles(samples)


def bench_new_block_pty(n: int) -> dict[str, float]:
    spec = get_chip("BM1370")
    master, slave = os.openpty()
    port = SerialTransport(os.ttyname(slave))
    arrivals: list[float] = []
    stop = threading.Event()

    def far_end() -> None:
        while not stop.is_set():
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                os.read(master, 65536)
                arrivals.append(time.perf_counter())

    reader = threading.Thread(target=far_end, daemon=True)
    reader.start()
    try:
        driver = AsicDriver(port, spec)
        driver.chain = Chain(spec, 1, time.monotonic())
        driver.send_job(_job(0))  # version mask write happens once, not per block
        time.sleep(0.05)
        written, arrived = [], []
        for i in range(n):
            arrivals.clear()
            t0 = time.perf_counter()
            driver.new_block(_job(i))
            written.append(time.perf_counter() - t0)
            deadline = time.perf_counter() + 1.0
            while not arrivals and time.perf_counter() < deadline:
                time.sleep(0.0002)
            if arrivals:
                arrived.append(arrivals[0] - t0)
            time.sleep(0.002)
    finally:
        stop.set()
        reader.join(1.0)
        port.close()
        os.close(master)
        os.close(slave)
    out = {f"written_{k}": v for k, v in _percentiles(written).items()}
    if arrived:
        out.update({f"readable_{k}": v for k, v in _percentiles(arrived).items()})
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--size", type=int, default=None, help="frames/nonces per rate test")
    args = parser.parse_args(argv)
    n = args.size or (20_000 if args.quick else 200_000)
    samples = max(5, n // 100) if args.quick else 1000
    result: dict = {"quick": args.quick, "size_frames": n}
    result.update(bench_encode(n))
    result.update(bench_decode(n))
    result.update(bench_verify(n))
    for model in ("BM1370", "BM1397"):
        for k, v in bench_new_block_memory(model, samples).items():
            result[f"new_block_to_write_{model}_memory_{k}_us"] = v
    for k, v in bench_new_block_pty(min(samples, 200)).items():
        result[f"new_block_to_write_BM1370_pty_{k}_us"] = v
    print(json.dumps(result, indent=2, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
