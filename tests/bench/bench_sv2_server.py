"""Bench: our SV2 server (appliance.stratum_v2) under many simulated miners over loopback.

The server runs in this process; the simulated miners (real Noise initiators from
`protocols.sv2`) run in a child process so the two share the 2 cores as they would on a box.
Every client opens a standard channel at the maximum target (every hash is a share, so no
CPU mining is needed), then all send their shares at once; we measure validated shares per
second at the server. Then a new prev_hash is broadcast and each client notes when its clean
job (SetNewPrevHash) arrives: latency = last arrival - broadcast (CLOCK_MONOTONIC is
system-wide, so the two processes' clocks agree).

    python tests/bench/bench_sv2_server.py [--quick] [--clients N] [--shares N]

Prints one JSON object. Bounded: every phase has a timeout and the child is always reaped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import PushedWorkSource
from protocols.sv2 import secp
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    NewMiningJob,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    Protocol,
    SetNewPrevHash,
    SetupConnection,
    SubmitSharesError,
    SubmitSharesStandard,
    SubmitSharesSuccess,
)
from protocols.sv2.noise import Certificate

PHASE_TIMEOUT = 240.0
MAX_TARGET = ((1 << 256) - 1).to_bytes(32, "little")
PREFIX = bytes.fromhex("0200000001" + "00" * 32 + "ffffffff" + "1c" + "03a08601" + "00" * 24)
SUFFIX = bytes.fromhex("ffffffff01" + "00f2052a01000000" + "0151" + "00000000")


def _work(template_id: int, prev: bytes) -> WorkTemplate:
    # Mainnet-like nbits: no share here is a block.
    path = tuple(bytes([i]) * 32 for i in range(1, 12))  # ~2,000 transactions deep
    return WorkTemplate(
        template_id, prev, 0x17034219, 0x20000000, 1_700_000_000, PREFIX[:-20], SUFFIX, 20, path
    )


class _Client:
    """One simulated miner: a Noise initiator with one standard channel."""

    def __init__(self) -> None:
        self.conn = Sv2Connection.initiator(None, now=int(time.time()))
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.channel_id = 0
        self.job: NewMiningJob | None = None
        self.prev: SetNewPrevHash | None = None
        self.acked = 0
        self.errors = 0
        self.clean_at = 0.0
        self.events: asyncio.Queue[object] = asyncio.Queue()

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(self.conn.initiate())
        asyncio.get_running_loop().create_task(self._pump())
        await self._wait(HandshakeComplete)
        self.send(SetupConnection(Protocol.MINING, 2, 2, 1, "127.0.0.1", 0, "bench", "", "", ""))
        self.send(OpenStandardMiningChannel(1, "bench", 0.0, MAX_TARGET))
        ok = await self._wait(OpenStandardMiningChannelSuccess)
        self.channel_id = ok.channel_id
        await self._wait(SetNewPrevHash)

    def send(self, message) -> None:
        self.writer.write(self.conn.send(message))

    async def _wait(self, kind: type):
        while True:
            event = await self.events.get()
            if isinstance(event, kind):
                return event

    async def _pump(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            reply = self.conn.receive_data(data, now=int(time.time()))
            if reply:
                self.writer.write(reply)
            while (event := self.conn.next_event()) is not None:
                if isinstance(event, NewMiningJob):
                    self.job = event
                elif isinstance(event, SetNewPrevHash):
                    if self.prev is not None and event.prev_hash != self.prev.prev_hash:
                        self.clean_at = time.monotonic()
                    self.prev = event
                elif isinstance(event, SubmitSharesSuccess):
                    self.acked += event.new_submits_accepted_count
                elif isinstance(event, SubmitSharesError):
                    self.errors += 1
                self.events.put_nowait(event)

    def shares(self, count: int) -> bytes:
        job, prev = self.job, self.prev
        assert job is not None and prev is not None
        return b"".join(
            self.conn.send(
                SubmitSharesStandard(
                    self.channel_id, n, prev.job_id, n, prev.min_ntime, job.version
                )
            )
            for n in range(count)
        )


async def _clients_main(port: int, clients: int, shares: int, pipe) -> None:
    crowd = [_Client() for _ in range(clients)]
    sem = asyncio.Semaphore(64)  # bounded concurrent handshakes

    async def connect(c: _Client) -> None:
        async with sem:
            await c.connect(port)

    t0 = time.monotonic()
    await asyncio.gather(*(connect(c) for c in crowd))
    pipe.send(("ready", time.monotonic() - t0))
    assert pipe.recv() == "go"
    bursts = [c.shares(shares) for c in crowd]  # encrypt before the clock starts
    start = time.monotonic()
    for c, burst in zip(crowd, bursts, strict=True):
        c.writer.write(burst)
    deadline = start + PHASE_TIMEOUT
    while sum(c.acked + c.errors for c in crowd) < clients * shares:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    pipe.send(("acked", sum(c.acked for c in crowd), sum(c.errors for c in crowd)))
    assert pipe.recv() == "watch"
    deadline = time.monotonic() + PHASE_TIMEOUT
    while any(c.clean_at == 0.0 for c in crowd) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    received = [c.clean_at for c in crowd if c.clean_at]
    pipe.send(("clean", len(received), max(received) if received else 0.0))
    for c in crowd:
        c.writer.close()


def _client_process(port: int, clients: int, shares: int, pipe) -> None:
    asyncio.run(_clients_main(port, clients, shares, pipe))


async def _run(clients: int, shares: int) -> dict:
    static, authority = os.urandom(32), os.urandom(32)
    now = int(time.time())
    cert = Certificate.issue(authority, secp.xonly_from_secret(static), now - 60, now + 3600)
    source = PushedWorkSource(_work(1, bytes(32)))
    # Aim so high that vardiff keeps the maximum target during the burst (every share counts).
    config = Sv2ServerConfig(
        host="127.0.0.1",
        port=0,
        shares_per_minute=1e12,
        ack_batch=32,
        ack_interval=0.1,
        max_channels_per_connection=4,
    )
    server = Sv2Server(source, static, cert, config)
    await server.start()
    loop = asyncio.get_running_loop()
    parent, child = mp.Pipe()
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_client_process, args=(server.port, clients, shares, child))
    proc.start()
    try:

        async def recv():
            return await asyncio.wait_for(loop.run_in_executor(None, parent.recv), PHASE_TIMEOUT)

        _, connect_s = await recv()
        base = server.counters.shares_accepted
        parent.send("go")
        t0 = time.monotonic()
        total = clients * shares
        while server.counters.shares_accepted + server.counters.shares_rejected - base < total:
            if time.monotonic() - t0 > PHASE_TIMEOUT:
                break
            await asyncio.sleep(0.002)
        validate_s = time.monotonic() - t0
        _, acked, errors = await recv()
        parent.send("watch")
        await asyncio.sleep(0.2)
        t_broadcast = time.monotonic()
        source.push(_work(2, bytes([1]) * 32))
        _, got, last_at = await recv()
        broadcast_s = server.counters.last_broadcast
        return {
            "clients": clients,
            "shares_per_client": shares,
            "connect_all_s": round(connect_s, 3),
            "shares_validated": server.counters.shares_accepted - base,
            "shares_acked_by_clients": acked,
            "share_errors": errors,
            "shares_per_s": round(total / validate_s, 1) if validate_s > 0 else 0.0,
            "new_template_broadcast_ms": round(broadcast_s * 1000, 3),
            "new_template_to_last_channel_ms": round((last_at - t_broadcast) * 1000, 3)
            if got
            else None,
            "channels_with_clean_job": got,
        }
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        await server.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run for CI (< 60 s)")
    ap.add_argument("--clients", type=int, default=None, help="simulated miners (connections)")
    ap.add_argument("--shares", type=int, default=None, help="shares each client sends")
    args = ap.parse_args(argv)
    clients = args.clients or (100 if args.quick else 1000)
    shares = args.shares or 50
    result = asyncio.run(_run(clients, shares))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
