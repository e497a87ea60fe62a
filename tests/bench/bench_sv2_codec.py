"""Benchmark the SV2 codec: share/job encode+decode rates, handshake time, transport MB/s.

Run: python tests/bench/bench_sv2_codec.py [--quick] [--iterations N]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocols.sv2 import secp
from protocols.sv2.framing import encode_header
from protocols.sv2.messages import (
    NewMiningJob,
    SubmitSharesExtended,
    SubmitSharesStandard,
)
from protocols.sv2.noise import Certificate, NoiseInitiator, NoiseResponder


def _rate(fn, iterations: int) -> float:
    """Calls per second of fn over `iterations` calls (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, time.perf_counter() - start)
    return iterations / best


def bench_messages(iterations: int) -> dict[str, float]:
    samples = {
        "submit_shares_standard": SubmitSharesStandard(
            7, 1234, 42, 0xDEADBEEF, 0x65000000, 0x20000000
        ),
        "submit_shares_extended": SubmitSharesExtended(
            7, 1234, 42, 0xDEADBEEF, 0x65000000, 0x20000000, os.urandom(8)
        ),
        "new_mining_job": NewMiningJob(7, 42, None, 0x20000000, os.urandom(32)),
    }
    out: dict[str, float] = {}
    for name, msg in samples.items():
        payload = msg.encode_payload()
        cls = type(msg)
        out[f"{name}_encode_per_s"] = round(_rate(msg.encode_payload, iterations))
        out[f"{name}_decode_per_s"] = round(
            _rate(lambda c=cls, p=payload: c.decode_payload(p), iterations)
        )
    return out


def _pki():
    authority, static = os.urandom(32), os.urandom(32)
    cert = Certificate.issue(authority, secp.xonly_from_secret(static), 0, 2**32 - 1)
    return secp.xonly_from_secret(authority), static, cert


def bench_handshake(rounds: int) -> dict[str, float]:
    auth, static, cert = _pki()
    start = time.perf_counter()
    for _ in range(rounds):
        initiator = NoiseInitiator(auth)
        act2, _ = NoiseResponder(static, cert).read_act1(initiator.write_act1())
        initiator.read_act2(act2, 1_800_000_000)
    elapsed = time.perf_counter() - start
    return {"handshake_ms": round(1000 * elapsed / rounds, 3)}


def bench_transport(total_bytes: int, frame_size: int) -> dict[str, float]:
    auth, static, cert = _pki()
    initiator = NoiseInitiator(auth)
    act2, server = NoiseResponder(static, cert).read_act1(initiator.write_act1())
    client = initiator.read_act2(act2, 1_800_000_000)
    payload = os.urandom(frame_size)
    header = encode_header(0, 0x71, frame_size, False)
    frames = max(1, total_bytes // frame_size)
    start = time.perf_counter()
    wires = [client.encrypt_frame(header, payload) for _ in range(frames)]
    enc = time.perf_counter() - start
    start = time.perf_counter()
    for wire in wires:
        server.feed(wire)
        frame = server.next_frame()
        assert frame is not None and len(frame.payload) == frame_size
    dec = time.perf_counter() - start
    mb = frames * frame_size / 1e6
    return {
        "transport_encrypt_MB_per_s": round(mb / enc, 1),
        "transport_decrypt_MB_per_s": round(mb / dec, 1),
        "transport_frame_bytes": frame_size,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small iteration counts (CI)")
    parser.add_argument("--iterations", type=int, help="message encode/decode calls per run")
    args = parser.parse_args(argv)
    iterations = args.iterations or (20_000 if args.quick else 200_000)
    result: dict[str, float] = {"mode": "quick" if args.quick else "full"}  # type: ignore[dict-item]
    result.update(bench_messages(iterations))
    result.update(bench_handshake(20 if args.quick else 200))
    result.update(
        bench_transport((8 if args.quick else 64) * 1_000_000, 1_000_000)
        if iterations >= 1000
        else bench_transport(200_000, 100_000)
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
