"""Stratum V1 codec throughput: submit parsing, notify encoding, share validation.

Run: python tests/bench/bench_sv1_codec.py [--quick]   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocols.stratum_v1 import (
    AuthorizeResult,
    JobBook,
    Notify,
    ServerConnection,
    Submit,
    SubmitResult,
    SubscribeResult,
)
from protocols.stratum_v1.codec import (
    decode_client_request,
    encode_event,
    split_message,
)
from protocols.stratum_v1.framing import LineDecoder, encode_line
from protocols.stratum_v1.work import MAX_TARGET, sha256d

EN1 = bytes.fromhex("a1b2c3d4")


def _job() -> Notify:
    """A mainnet-sized job: ~4000 transactions → 12 branch levels, typical coinbase halves."""
    return Notify(
        job_id="6a3f",
        prevhash=sha256d(b"prev"),
        coinb1=bytes(range(100)),
        coinb2=bytes(range(150)),
        merkle_branch=tuple(sha256d(bytes([i])) for i in range(12)),
        version=0x20000000,
        nbits=0x17034219,
        ntime=0x66F1B2A9,
        clean_jobs=True,
    )


def _submits(n: int) -> list[Submit]:
    return [
        Submit(
            "bc1qworker.rig01",
            "6a3f",
            i.to_bytes(8, "big"),
            0x66F1B2A9,
            i * 7919 & 0xFFFFFFFF,
            0x00006000,
            req_id=i + 10,
        )
        for i in range(n)
    ]


def _ready_server() -> ServerConnection:
    server = ServerConnection()
    server.receive_data(b'{"id":1,"method":"mining.subscribe","params":["bench"]}\n')
    server.send(SubscribeResult(1, EN1, 8))
    server.receive_data(b'{"id":2,"method":"mining.authorize","params":["bc1qworker.rig01","x"]}\n')
    server.send(AuthorizeResult(2, True))
    return server


def bench_submit_parse(n: int, batch: int = 64) -> tuple[float, float]:
    """(parse+shape-check rate, full rate incl. connection checks and the encoded reply)."""
    lines = [encode_line(encode_event(s)) for s in _submits(n)]
    chunks = [b"".join(lines[i : i + batch]) for i in range(0, n, batch)]
    decoder = LineDecoder()
    t0 = time.perf_counter()
    parsed = 0
    for chunk in chunks:
        for obj in decoder.feed(chunk):
            method, rid = split_message(obj)
            decode_client_request(obj, method, rid)
            parsed += 1
    parse_s = time.perf_counter() - t0
    assert parsed == n

    server = _ready_server()
    t0 = time.perf_counter()
    for chunk in chunks:
        for e in server.receive_data(chunk):
            server.check_submit(e)
            server.send(SubmitResult(e.req_id, True))
    full_s = time.perf_counter() - t0
    return n / parse_s, n / full_s


def bench_notify_encode(n: int) -> tuple[float, int]:
    server = ServerConnection()
    job = _job()
    t0 = time.perf_counter()
    size = 0
    for _ in range(n):
        size = len(server.send(job))
    return n / (time.perf_counter() - t0), size


def bench_share_validate(n: int) -> float:
    book = JobBook()
    book.add(_job())
    subs = _submits(n)
    t0 = time.perf_counter()
    for s in subs:
        book.validate(s, EN1, MAX_TARGET, 0x1FFFE000)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small counts (CI smoke run)")
    ap.add_argument("--n", type=int, default=None, help="messages per measurement")
    args = ap.parse_args(argv)
    n = args.n or (2_000 if args.quick else 50_000)
    parse_rate, full_rate = bench_submit_parse(n)
    notify_rate, notify_bytes = bench_notify_encode(n)
    result = {
        "messages": n,
        "submit_parse_per_second": round(parse_rate),
        "submit_parse_check_reply_per_second": round(full_rate),
        "notify_encode_per_second": round(notify_rate),
        "notify_line_bytes": notify_bytes,
        "share_validate_per_second": round(bench_share_validate(n)),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
