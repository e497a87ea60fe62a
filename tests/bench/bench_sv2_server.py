"""Bench: our SV2 server and SV1 listener, next to SRI's pool_sv2, under many simulated miners.

Targets measured in one run on this machine, one after the other, with the same client count
and the same share workload (N clients x S shares, all sent at once):

- ``sv2``: our SV2 server (appliance.stratum_v2) in this process, fed by a pushed template;
- ``sv1``: our SV1 listener (the same server object, SV1 port), SV1 clients;
- ``sv2_workers`` / ``sv1_workers``: the same on the module's share-server worker processes
  (`workers` = one per core, at least two), as a farm's pool runs it;
- ``sri``: SRI's ``pool_sv2`` binary, its templates from our node's real Template Provider
  (regtest chainstate in a thread of this process); our SV2 clients pin its authority key;
- ``sri_sv1``: SRI's SV1 front end, ``translator_sv2``, in front of that ``pool_sv2``, under
  the same SV1 clients (like for like with our SV1 listener).

The simulated miners run in a child process (the server's cores are shared as on a box).
Channels are opened at the maximum target so shares cost no mining; for SRI, whose regtest
network target is ~2^255, each share is ground (on average two hashes, before the clock
starts) to lie above the network target, so every share is a share and none a block. SV1
shares carry a distinct extranonce2 each, as ASICs that roll it do: every one costs its
server a coinbase hash and a merkle branch. Both sides mine the same mainnet-deep template:
TEMPLATE_TXS transactions besides the coinbase, so an 11-level coinbase merkle branch
(pushed as such to ours; real transactions in our node's mempool for SRI).
Throughput = shares acknowledged by the server / time from the burst's first byte to the last
acknowledgement, seen by the clients (the same measurement for all); ours also report the
server-side validation count. Latency = new template (a new prev hash: pushed work for ours,
a new block connected on our node for SRI) -> the last channel's clean job
(CLOCK_MONOTONIC is system-wide, so the processes' clocks agree). Every target runs once per
round (five rounds at full size); each is reported by its median round, and the ratios to
SRI by the medians and by the worst round. ``goal_throughput_at_least_sri`` says whether
ours, on every core as SRI's multi-threaded roles are (``*_workers``), is at least SRI's.

    python tests/bench/bench_sv2_server.py [--quick] [--clients N] [--shares N] [--no-sri]
                                           [--rounds N]

Without the SRI binaries the SRI side is reported as not measured; with
BLVM_REQUIRE_INTEROP=1 that is an error (exit status 2). Prints one JSON object. Bounded:
every phase has a timeout, the child and SRI roles are always reaped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import PushedWorkSource
from appliance.stratum_v2.workers import WorkerPool
from protocols.stratum_v1 import events as ev1
from protocols.stratum_v1.connection import ClientConnection
from protocols.stratum_v1.work import (
    build_header,
    difficulty_to_target,
    merkle_root_from_branch,
    sha256d,
)
from protocols.sv2 import keys as sv2keys
from protocols.sv2 import secp
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    MiningClientFlags,
    NewMiningJob,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    Protocol,
    SetNewPrevHash,
    SetTarget,
    SetupConnection,
    SubmitSharesError,
    SubmitSharesStandard,
    SubmitSharesSuccess,
)
from protocols.sv2.noise import Certificate

PHASE_TIMEOUT = 120.0
MAX = (1 << 256) - 1
MAX_TARGET = MAX.to_bytes(32, "little")
PREFIX = bytes.fromhex("0200000001" + "00" * 32 + "ffffffff" + "1c" + "03a08601" + "00" * 24)
SUFFIX = bytes.fromhex("ffffffff01" + "00f2052a01000000" + "0151" + "00000000")
REQUIRE_ENV = "BLVM_REQUIRE_INTEROP"


#: Transactions besides the coinbase in every template of the run, ours and SRI's.
TEMPLATE_TXS = 1_100
MERKLE_LEVELS = math.ceil(math.log2(TEMPLATE_TXS + 1))


def _work(template_id: int, prev: bytes) -> WorkTemplate:
    # Mainnet-like nbits: no share here is a block.
    path = tuple(bytes([i]) * 32 for i in range(1, MERKLE_LEVELS + 1))
    return WorkTemplate(
        template_id, prev, 0x17034219, 0x20000000, 1_700_000_000, PREFIX[:-20], SUFFIX, 20, path
    )


def _sha256d_value(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(hashlib.sha256(data).digest()).digest(), "little")


def _grind_between(head: bytes, nonce: int, above: int, target: int) -> int:
    """The first nonce from `nonce` whose header hash lies in (above, target]."""
    while not above < _sha256d_value(head + nonce.to_bytes(4, "little")) <= target:
        nonce += 1
    return nonce


def _raise_fd_limit() -> None:
    """1,000 sockets in one process need more than the common soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# simulated miners (child process) ----------------------------------------------------------


class _Sv2Client:
    """One simulated SV2 miner: a Noise initiator with one standard channel."""

    def __init__(self, authority: bytes | None, avoid_target: int | None) -> None:
        self.conn = Sv2Connection.initiator(authority, now=int(time.time()))
        self.avoid_target = avoid_target  # shares must hash above it (not blocks)
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.channel_id = 0
        self.target = MAX
        self.jobs: dict[int, NewMiningJob] = {}
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
        flags = MiningClientFlags.REQUIRES_STANDARD_JOBS
        self.send(
            SetupConnection(Protocol.MINING, 2, 2, flags, "127.0.0.1", port, "bench", "", "", "")
        )
        self.send(OpenStandardMiningChannel(1, "bench", 1.0, MAX_TARGET))
        ok = await self._wait(OpenStandardMiningChannelSuccess)
        self.channel_id = ok.channel_id
        self.target = int.from_bytes(ok.target, "little")
        while self.current() is None:
            await self._wait(SetNewPrevHash | NewMiningJob)

    def current(self) -> tuple[NewMiningJob, SetNewPrevHash] | None:
        prev = self.prev
        job = self.jobs.get(prev.job_id) if prev is not None else None
        return (job, prev) if job is not None and prev is not None else None

    def send(self, message) -> None:
        self.writer.write(self.conn.send(message))

    async def _wait(self, kind):
        while True:
            event = await self.events.get()
            if isinstance(event, kind):
                return event

    async def _pump(self) -> None:
        while True:
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            reply = self.conn.receive_data(data, now=int(time.time()))
            if reply:
                self.writer.write(reply)
            while (event := self.conn.next_event()) is not None:
                if isinstance(event, NewMiningJob):
                    self.jobs[event.job_id] = event
                elif isinstance(event, SetNewPrevHash):
                    if self.prev is not None and event.prev_hash != self.prev.prev_hash:
                        self.clean_at = time.monotonic()
                    self.prev = event
                elif isinstance(event, SetTarget):
                    self.target = int.from_bytes(event.maximum_target, "little")
                elif isinstance(event, SubmitSharesSuccess):
                    self.acked += event.new_submits_accepted_count
                elif isinstance(event, SubmitSharesError):
                    self.errors += 1
                self.events.put_nowait(event)

    def shares(self, count: int) -> bytes:
        current = self.current()
        assert current is not None
        job, prev = current
        ntime = max(prev.min_ntime, job.min_ntime or 0)
        head = (
            job.version.to_bytes(4, "little")
            + prev.prev_hash
            + job.merkle_root
            + ntime.to_bytes(4, "little")
            + prev.nbits.to_bytes(4, "little")
        )
        out = []
        nonce = 0
        for seq in range(count):
            if self.avoid_target is not None:
                nonce = _grind_between(head, nonce, self.avoid_target, self.target)
            out.append(
                self.conn.send(
                    SubmitSharesStandard(
                        self.channel_id, seq, job.job_id, nonce, ntime, job.version
                    )
                )
            )
            nonce += 1
        return b"".join(out)


class _Sv1Client:
    """One simulated SV1 miner: subscribe, authorize, take the job, submit at once."""

    def __init__(self, avoid_target: int | None = None) -> None:
        self.conn = ClientConnection("bench")
        self.avoid_target = avoid_target  # shares must hash above it (not blocks)
        self.extranonce1 = b""
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.notify: ev1.Notify | None = None
        self.extranonce2_size = 8
        self.target = MAX
        self.acked = 0
        self.errors = 0
        self.clean_at = 0.0
        self.ready = asyncio.Event()
        # Once the burst is out, answers are counted without parsing JSON: the load generator
        # must not eat the CPU the servers under test share with it (SV1 answers every share).
        self.counting = False
        self._partial = b""

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        asyncio.get_running_loop().create_task(self._pump())
        self.writer.write(self.conn.send(ev1.Subscribe("bench")))
        self.writer.write(self.conn.send(ev1.Authorize("bench.w")))
        await self.ready.wait()

    async def _pump(self) -> None:
        while True:
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            if self.counting:
                data = self._count_answers(data)
            for event in self.conn.receive_data(data):
                if isinstance(event, ev1.SubscribeResult | ev1.SetExtranonce):
                    self.extranonce1 = event.extranonce1
                    self.extranonce2_size = event.extranonce2_size
                elif isinstance(event, ev1.SetDifficulty):
                    self.target = min(difficulty_to_target(event.difficulty), MAX)
                elif isinstance(event, ev1.Notify):
                    notify = self.notify
                    if (
                        notify is not None
                        and event.prevhash != notify.prevhash
                        and event.clean_jobs
                    ):
                        self.clean_at = time.monotonic()
                    self.notify = event
                    self.ready.set()
                elif isinstance(event, ev1.SubmitResult):
                    if event.accepted:
                        self.acked += 1
                    else:
                        self.errors += 1
                elif isinstance(event, ev1.ErrorResponse):
                    self.errors += 1

    def _count_answers(self, data: bytes) -> bytes:
        """Count share answers in complete lines; return the other lines for the parser."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        rest = []
        for line in lines:
            if b'"method"' in line or not line.startswith(b'{"id":'):
                rest.append(line)
            elif b'"result":true' in line:
                self.acked += 1
            else:
                self.errors += 1
        return b"\n".join(rest) + b"\n" if rest else b""

    def shares(self, count: int) -> bytes:
        notify = self.notify
        assert notify is not None
        self.counting = True
        out = []
        for n in range(count):
            extranonce2 = n.to_bytes(self.extranonce2_size, "little")
            nonce = n
            if self.avoid_target is not None:
                coinbase = notify.coinb1 + self.extranonce1 + extranonce2 + notify.coinb2
                root = merkle_root_from_branch(sha256d(coinbase), notify.merkle_branch)
                head = build_header(
                    notify.version, notify.prevhash, root, notify.ntime, notify.nbits, 0
                )[:76]
                nonce = _grind_between(head, nonce, self.avoid_target, self.target)
            out.append(
                self.conn.send(
                    ev1.Submit("bench.w", notify.job_id, extranonce2, notify.ntime, nonce)
                )
            )
        return b"".join(out)


async def _clients_main(
    kind: str, port: int, clients: int, shares: int, pipe, authority, avoid
) -> None:
    _raise_fd_limit()
    if kind == "sv1":
        crowd: list = [_Sv1Client(avoid) for _ in range(clients)]
    else:
        crowd = [_Sv2Client(authority, avoid) for _ in range(clients)]
    sem = asyncio.Semaphore(64)  # bounded concurrent handshakes

    async def connect(c) -> None:
        async with sem:
            await asyncio.wait_for(c.connect(port), PHASE_TIMEOUT)

    t0 = time.monotonic()
    await asyncio.gather(*(connect(c) for c in crowd))
    easiest = min(c.target for c in crowd)
    # SV1 jobs show their coinbase merkle branch: proof that both sides got the same depth.
    levels = len(crowd[0].notify.merkle_branch) if kind == "sv1" else None
    pipe.send(("ready", time.monotonic() - t0, easiest, levels))
    assert pipe.recv() == "go"
    bursts = [c.shares(shares) for c in crowd]  # grind/encrypt before the clock starts
    pipe.send(("start", time.monotonic()))
    start = time.monotonic()
    for c, burst in zip(crowd, bursts, strict=True):
        c.writer.write(burst)
    deadline = start + PHASE_TIMEOUT
    last = start
    seen = 0
    while (done := sum(c.acked + c.errors for c in crowd)) < clients * shares:
        if time.monotonic() > deadline:
            break
        if done != seen:
            seen, last = done, time.monotonic()
        await asyncio.sleep(0.002)
    if sum(c.acked + c.errors for c in crowd) != seen:
        last = time.monotonic()
    acked = sum(c.acked for c in crowd)
    pipe.send(("acked", acked, sum(c.errors for c in crowd), last - start))
    assert pipe.recv() == "watch"
    deadline = time.monotonic() + PHASE_TIMEOUT
    while any(c.clean_at == 0.0 for c in crowd) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    received = [c.clean_at for c in crowd if c.clean_at]
    pipe.send(("clean", len(received), max(received) if received else 0.0))
    for c in crowd:
        c.writer.close()


def _client_process(kind, port, clients, shares, pipe, authority, avoid) -> None:
    asyncio.run(_clients_main(kind, port, clients, shares, pipe, authority, avoid))


# one measured run ---------------------------------------------------------------------------


async def _drive(
    kind: str,
    port: int,
    clients: int,
    shares: int,
    new_template,
    *,
    authority: bytes | None = None,
    avoid: int | None = None,
    server_counted=None,
) -> dict:
    """Start the crowd on `port`, burst the shares, then call `new_template()` and time it."""
    loop = asyncio.get_running_loop()
    parent, child = mp.Pipe()
    ctx = mp.get_context("fork")
    args = (kind, port, clients, shares, child, authority, avoid)
    proc = ctx.Process(target=_client_process, args=args)
    proc.start()
    try:

        async def recv():
            return await asyncio.wait_for(loop.run_in_executor(None, parent.recv), PHASE_TIMEOUT)

        _, connect_s, share_target, levels = await recv()
        base = server_counted() if server_counted else 0
        parent.send("go")
        _, start = await recv()
        total = clients * shares
        validate_s = None
        if server_counted is not None:
            while server_counted() - base < total and time.monotonic() - start < PHASE_TIMEOUT:
                await asyncio.sleep(0.002)
            validate_s = time.monotonic() - start
        _, acked, errors, ack_s = await recv()
        parent.send("watch")
        await asyncio.sleep(0.2)
        t_new = time.monotonic()
        new_template()
        _, got, last_at = await recv()
        result = {
            "clients": clients,
            "shares_per_client": shares,
            "connect_all_s": round(connect_s, 3),
            "share_target_log2_min": round(math.log2(share_target), 3),
            "shares_acked": acked,
            "share_errors": errors,
            "shares_acked_per_s": round(acked / ack_s, 1) if ack_s > 0 else 0.0,
            "new_template_to_last_channel_ms": round((last_at - t_new) * 1000, 3) if got else None,
            "channels_with_clean_job": got,
        }
        if levels is not None:
            result["merkle_branch_levels"] = levels
        if validate_s is not None:
            result["shares_validated"] = server_counted() - base
            result["shares_validated_per_s"] = round(total / validate_s, 1) if validate_s else 0.0
        return result
    finally:
        proc.join(timeout=15)
        if proc.is_alive():
            proc.kill()
            proc.join()


async def _run_ours(kind: str, clients: int, shares: int, workers: int = 1) -> dict:
    static, authority = os.urandom(32), os.urandom(32)
    now = int(time.time())
    cert = Certificate.issue(authority, secp.xonly_from_secret(static), now - 60, now + 3600)
    source = PushedWorkSource(_work(1, bytes(32)))
    # Aim so high that vardiff keeps the maximum target during the burst (every share counts).
    config = Sv2ServerConfig(
        host="127.0.0.1",
        port=0,
        sv1_port=0 if kind == "sv1" else None,
        sv1_initial_hashrate=1.0,
        shares_per_minute=1e12,
        ack_batch=shares,  # one acknowledgement per channel, as pool_sv2 is configured
        ack_interval=0.1,
        max_channels_per_connection=4,
    )
    if workers > 1:
        return await _run_pool(kind, clients, shares, workers, source, static, cert, config)
    server = Sv2Server(source, static, cert, config)
    await server.start()
    try:
        counters = server.counters
        result = await _drive(
            kind,
            server.sv1_port if kind == "sv1" else server.port,
            clients,
            shares,
            lambda: source.push(_work(2, bytes([1]) * 32)),
            server_counted=lambda: counters.shares_accepted + counters.shares_rejected,
        )
        result["new_template_broadcast_ms"] = round(counters.last_broadcast * 1000, 3)
        result["workers"] = 1
        return result
    finally:
        await server.close()


async def _run_pool(kind, clients, shares, workers, source, static, cert, config) -> dict:
    """The same run on `workers` share-server processes (the module's `workers` setting)."""
    pool = WorkerPool(source, static, cert, config, workers)
    await pool.start()
    try:
        result = await _drive(
            kind,
            pool.sv1_port if kind == "sv1" else pool.port,
            clients,
            shares,
            lambda: source.push(_work(2, bytes([1]) * 32)),
        )
        # Workers report every STATUS_INTERVAL: wait for the counts to arrive.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = pool.status()
            counted = status["shares_accepted"] + status["shares_rejected"]
            if counted >= clients * shares:
                break
            await asyncio.sleep(0.05)
        result["shares_validated"] = counted
        result["shares_per_worker"] = [w["shares_accepted"] for w in status["share_server_workers"]]
        result["new_template_broadcast_ms"] = round(pool.counters.last_broadcast * 1000, 3)
        result["workers"] = workers
        return result
    finally:
        await pool.close()


# pool_sv2 -----------------------------------------------------------------------------------


def _sri_binary(role: str = "pool_sv2") -> Path:
    from tests.helpers.sri import BIN

    return BIN / role


async def _run_sri(kind: str, clients: int, shares: int) -> dict:
    """pool_sv2 on our node's Template Provider; for `kind` "sv1", translator_sv2 in front."""
    from tests.helpers.sri import (
        REGTEST_TARGET,
        SRI_PUBLIC,
        connect_retrying,
        free_port,
        node_template_provider,
        payout,
        pool_config,
        translator_config,
    )
    from tests.unit.mempool.mempool_tools import block_on

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sri-")))
        node = stack.enter_context(node_template_provider(tmp, n_txs=TEMPLATE_TXS))
        port = free_port()
        # Cheap shares: a nominal 1 H/s channel at 1,000 shares/min gets the maximum target;
        # one acknowledgement per channel per burst, as our servers are configured.
        text = pool_config(port, node.tp.port, payout())
        text = text.replace("shares_per_minute = 6.0", "shares_per_minute = 1000.0")
        text = text.replace("share_batch_size = 1", f"share_batch_size = {shares}")
        logs = [_start_role(stack, tmp, "pool_sv2", text)]
        connect_retrying(port, timeout=30).close()
        if kind == "sv1":
            sv1_port = free_port()
            text = translator_config(sv1_port, port, SRI_PUBLIC, extranonce2_size=8)
            # Every SV1 share at the maximum target, as on our listener (no vardiff).
            text = text.replace(
                "min_individual_miner_hashrate = 10.0", "min_individual_miner_hashrate = 1.0"
            ).replace("shares_per_minute = 6.0", "shares_per_minute = 1000.0")
            logs.append(_start_role(stack, tmp, "translator_sv2", text))
            connect_retrying(sv1_port, timeout=30).close()
            port = sv1_port

        # Built before the clock: no share in the run is a block, so the tip stays put.
        tip = node.chain.tip
        block = block_on(tip.hash, tip.height + 1, tip.time + 1, extra=b"bench")

        def new_block() -> None:
            assert node._loop is not None
            node._loop.call_soon_threadsafe(node.chain.process_block, block)

        try:
            result = await _drive(
                kind,
                port,
                clients,
                shares,
                new_block,
                authority=sv2keys.decode_authority_public_key(SRI_PUBLIC),
                avoid=REGTEST_TARGET,
            )
        except BaseException:
            for log_path in logs:
                sys.stderr.write(f"--- {log_path.name}\n{log_path.read_text()[-3000:]}")
            raise
        result["version"] = _role_version("pool_sv2")
        if kind == "sv1":
            result["translator_version"] = _role_version("translator_sv2")
            result["path"] = "SV1 clients -> translator_sv2 -> pool_sv2"
        result["template_source"] = "our node's Template Provider (regtest), new block"
        result["latency_includes"] = "block connect + template build on our node, then SRI"
        return result


def _start_role(stack: contextlib.ExitStack, tmp: Path, role: str, config_text: str) -> Path:
    """Start one SRI role on `config_text` (killed when `stack` closes); returns its log."""
    config = tmp / f"{role}.toml"
    config.write_text(config_text)
    log_path = tmp / f"{role}.log"
    log = stack.enter_context(log_path.open("w"))
    proc = subprocess.Popen(
        [str(_sri_binary(role)), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
    )

    def reap() -> None:
        proc.kill()
        proc.wait(timeout=10)

    stack.callback(reap)
    return log_path


def _role_version(role: str) -> str:
    return subprocess.run(
        [str(_sri_binary(role)), "--version"], capture_output=True, text=True, timeout=10
    ).stdout.strip()


# entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="issue size, few shares (< 60 s)")
    ap.add_argument("--clients", type=int, default=None, help="simulated miners (connections)")
    ap.add_argument("--shares", type=int, default=None, help="shares each client sends")
    ap.add_argument("--no-sri", action="store_true", help="skip pool_sv2 (ours only)")
    ap.add_argument("--rounds", type=int, default=None, help="runs of every target (median)")
    args = ap.parse_args(argv)
    clients = args.clients or 1000
    shares = args.shares or (5 if args.quick else 50)
    rounds = max(1, args.rounds or (1 if args.quick else 5))
    skip_sri = "--no-sri" if args.no_sri else None
    missing = [r for r in ("pool_sv2", "translator_sv2") if not _sri_binary(r).exists()]
    if skip_sri is None and missing:
        skip_sri = (
            f"{', '.join(missing)} not built in {_sri_binary().parent}; run scripts/install-sri.sh"
        )
        if os.environ.get(REQUIRE_ENV) == "1":  # fail before spending a minute on ours
            sys.stderr.write(f"bench_sv2_server: {REQUIRE_ENV}=1 but {skip_sri}\n")
            raise SystemExit(2)
    _raise_fd_limit()
    # The module's `workers` setting on this machine: one share-server process per core.
    workers = max(2, os.cpu_count() or 1)
    targets = {
        "sv2": lambda: _run_ours("sv2", clients, shares),
        "sv1": lambda: _run_ours("sv1", clients, shares),
        "sv2_workers": lambda: _run_ours("sv2", clients, shares, workers),
        "sv1_workers": lambda: _run_ours("sv1", clients, shares, workers),
    }
    if skip_sri is None:
        targets["sri"] = lambda: _run_sri("sv2", clients, shares)
        targets["sri_sv1"] = lambda: _run_sri("sv1", clients, shares)
    # Every target once per round, rounds one after the other: a slow spell of the machine
    # hits ours and SRI alike, and each side is reported by its median round.
    runs: dict[str, list[dict]] = {key: [] for key in targets}
    for _ in range(rounds):
        for key, run in targets.items():
            runs[key].append(asyncio.run(run()))
    rate, latency = "shares_acked_per_s", "new_template_to_last_channel_ms"
    result: dict = {"clients": clients, "shares_per_client": shares, "rounds": rounds}
    for key, samples in runs.items():
        ranked = sorted(samples, key=lambda r: r[rate])
        result[key] = dict(ranked[len(ranked) // 2])
        result[key]["rounds_shares_acked_per_s"] = [r[rate] for r in samples]
        if key.startswith("sri"):
            result[key]["measured"] = True
    if skip_sri is not None:
        reason = {"measured": False, "reason": f"SRI not measured: {skip_sri}"}
        result["sri"] = result["sri_sv1"] = reason
    else:

        def ratio(ours: dict, theirs: dict, field: str) -> float | None:
            a, b = ours.get(field), theirs.get(field)
            return round(a / b, 3) if a and b else None

        # Like for like: our SV2 server vs pool_sv2, our SV1 listener vs SRI's SV1 front end.
        pairs = {
            "sv2": ("sv2", "sri"),
            "sv1": ("sv1", "sri_sv1"),
            "sv2_workers": ("sv2_workers", "sri"),
            "sv1_workers": ("sv1_workers", "sri_sv1"),
        }
        result["ratio_ours_to_sri"] = {
            name: ratio(result[ours], result[theirs], rate)
            for name, (ours, theirs) in pairs.items()
        }
        result["ratio_ours_to_sri"]["sv1_vs_pool_sv2"] = ratio(result["sv1"], result["sri"], rate)
        # The worst round's ratio (each round's pair ran back to back).
        result["ratio_ours_to_sri_worst_round"] = {
            name: min(
                ratio(o, t, rate) or 0.0 for o, t in zip(runs[ours], runs[theirs], strict=True)
            )
            for name, (ours, theirs) in pairs.items()
        }
        # The issue's goal, on equal terms: every core on both sides (SRI's roles are
        # multi-threaded; ours with the module's `workers`), medians of the rounds.
        ratios = result["ratio_ours_to_sri"]
        result["goal_throughput_at_least_sri"] = {
            "sv2": (ratios["sv2_workers"] or 0.0) >= 1.0,
            "sv1": (ratios["sv1_workers"] or 0.0) >= 1.0,
        }
        result["latency_ratio_ours_to_sri"] = {
            name: ratio(result[ours], result[theirs], latency)
            for name, (ours, theirs) in pairs.items()
        }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
