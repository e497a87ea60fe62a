"""Share-server worker processes: the SV2/SV1 listeners on every core.

One Python process validates on the order of 90k SV2 shares/s on one core. A farm's pool on
a multi-core board runs `workers` processes, each a full `Sv2Server` bound to the same ports
with SO_REUSEPORT, so the kernel spreads the connections across them. What must stay single
stays here in the parent: the template source (node link, upstream pools), the upstream
share sink and block submission. Work goes down a pipe to every worker; blocks, accepted
shares (only when they are forwarded upstream) and each worker's status come back up.

A worker that dies is restarted (its miners reconnect, to any worker); channel ids are
partitioned by worker and generation, so extranonce prefixes stay unique across all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from appliance.stratum_v2.jobs import WorkTemplate
from appliance.stratum_v2.server import ShareSink, Sv2ServerConfig
from appliance.stratum_v2.source import TemplateSource
from appliance.stratum_v2.worker_pipe import PipeEnd
from appliance.stratum_v2.worker_process import WorkerSpec
from protocols.bitcoin.block import Block
from protocols.sv2.noise import Certificate

__all__ = ["WorkerPool"]

log = logging.getLogger("blvm.stratum_v2.workers")

START_TIMEOUT = 30.0  # a worker's imports and listen
RESTART_DELAY = 1.0  # between a worker's death and its replacement
GENERATION_IDS = 1 << 20  # channel ids each generation of a worker may use (per worker)
MAX_RESTART_DELAY = 30.0  # a worker that keeps dying is retried at most this often
STABLE_AFTER = 60.0  # seconds of running after which a death is not counted as a crash
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # what `-m appliance...` needs
_SUMMED = (
    "connections",
    "connections_total",
    "closed_protocol_error",
    "channels",
    "shares_accepted",
    "shares_rejected",
    "blocks_found",
    "blocks_accepted",
    "templates",
)


@dataclass(slots=True)
class _Worker:
    index: int
    generation: int = 0
    process: Any = None
    pipe: PipeEnd | None = None
    ready: asyncio.Future[None] | None = None
    status: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    crashes: int = 0  # consecutive early deaths (restart back-off)
    ready_at: float = 0.0


@dataclass(slots=True)
class PoolCounters:
    """Counters kept by the parent (the workers report theirs in `status()`)."""

    blocks_submitted: int = 0
    blocks_accepted: int = 0
    block_results: list[str | None] = field(default_factory=list)
    shares_forwarded: int = 0
    worker_restarts: int = 0
    last_broadcast: float = 0.0  # seconds to queue the latest work to every worker


class WorkerPool:
    """`workers` processes serving one SV2 (and SV1) port. `await start()`, `await close()`."""

    def __init__(
        self,
        source: TemplateSource,
        static_secret: bytes,
        certificate: Certificate,
        config: Sv2ServerConfig,
        workers: int,
        *,
        share_sink: ShareSink | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.source = source
        self.static_secret = static_secret
        self.certificate = certificate
        self.config = config
        self.share_sink = share_sink
        self.counters = PoolCounters()
        self.port = 0
        self.sv1_port = 0
        self._workers = [_Worker(i) for i in range(workers)]
        self._placeholders: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        self.port = self._reserve(cfg.host, cfg.port)
        if cfg.sv1_port is not None:
            self.sv1_port = self._reserve(cfg.sv1_host or cfg.host, cfg.sv1_port)
        for worker in self._workers:
            self._spawn(worker)
        try:
            await asyncio.gather(*(self._wait_ready(w) for w in self._workers))
        except BaseException:
            await self.close()
            raise
        self._unsubscribe = self.source.subscribe(self._on_work_threadsafe)
        work = await asyncio.to_thread(self.source.current)
        if work is not None:
            self._broadcast(work)
        sv1 = f", SV1 port {self.sv1_port}" if self.sv1_port else ""
        log.info("%d share-server workers on port %d%s", len(self._workers), self.port, sv1)

    async def close(self) -> None:
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        for worker in self._workers:
            if worker.pipe is not None:
                worker.pipe.send("stop")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self._workers:
            await asyncio.to_thread(self._reap, worker, 10.0)
            if worker.pipe is not None:
                worker.pipe.close()
        for sock in self._placeholders:
            sock.close()
        self._placeholders.clear()

    def _reserve(self, host: str, port: int) -> int:
        """Bind (not listen) a SO_REUSEPORT socket: fixes the port when 0 was asked, and keeps
        it ours while workers come and go. Only listening sockets receive connections."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self._placeholders.append(sock)
        return sock.getsockname()[1]

    def _spec(self, worker: _Worker) -> WorkerSpec:
        n = len(self._workers)
        first = 1 + worker.index + worker.generation * n * GENERATION_IDS
        config = dataclasses.replace(
            self.config,
            port=self.port,
            sv1_port=self.sv1_port if self.config.sv1_port is not None else None,
            reuse_port=True,
            channel_id_first=first,
            channel_id_step=n,
        )
        return WorkerSpec(
            worker.index,
            config,
            self.static_secret,
            self.certificate,
            self.source.extranonce_size,
            self.share_sink is not None,
            logging.getLogger().getEffectiveLevel(),
        )

    def _spawn(self, worker: _Worker) -> None:
        assert self._loop is not None
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            worker.process = subprocess.Popen(
                [sys.executable, "-m", "appliance.stratum_v2.worker_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        finally:
            theirs.close()
        worker.status = {}
        worker.ready = self._loop.create_future()
        worker.pipe = PipeEnd(Connection(ours.detach()), f"pool-worker{worker.index}")
        worker.pipe.send("spec", self._spec(worker))
        current = self.source.current()
        if current is not None:
            worker.pipe.send("work", current)
        worker.pipe.start_reading(
            self._loop,
            lambda message, w=worker: self._on_message(w, message),
            lambda w=worker: self._on_exit(w),
        )

    async def _wait_ready(self, worker: _Worker) -> None:
        assert worker.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), START_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(
                f"share-server worker {worker.index} did not start within {START_TIMEOUT:.0f} s"
            ) from None

    @staticmethod
    def _reap(worker: _Worker, timeout: float) -> None:
        process = worker.process
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    # messages from workers ----------------------------------------------------------------

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "shares":
            sink = self.share_sink
            if sink is not None:
                for share in message[1]:
                    sink(share)
                self.counters.shares_forwarded += len(message[1])
        elif kind == "status":
            worker.status = message[1]
        elif kind == "block":
            self._task(self._submit(worker, message[1], message[2]))
        elif kind == "refresh":
            self._task(asyncio.to_thread(self.source.refresh, message[1]))
        elif kind == "ready":
            worker.ready_at = time.monotonic()
            if worker.ready is not None and not worker.ready.done():
                worker.ready.set_result(None)
        else:
            log.warning("worker %d sent an unknown message %r", worker.index, kind)

    async def _submit(self, worker: _Worker, request: int, raw: bytes) -> None:
        self.counters.blocks_submitted += 1
        try:
            block = Block.from_bytes(raw)
            reason = await asyncio.to_thread(self.source.submit_block, block)
        except Exception as exc:  # a bad block must not take the pool down
            log.exception("block from worker %d could not be submitted", worker.index)
            reason = f"submit-failed: {exc}"
        self.counters.block_results.append(reason)
        if reason is None:
            self.counters.blocks_accepted += 1
        if worker.pipe is not None:
            worker.pipe.send("block_result", request, reason)

    def _on_exit(self, worker: _Worker) -> None:
        """The worker's pipe closed: it exited (or was killed). Replace it unless stopping."""
        if self._closing:
            return
        ready = worker.ready
        if ready is not None and not ready.done():  # died while starting: no restart loop
            ready.set_exception(
                RuntimeError(f"share-server worker {worker.index} exited while starting")
            )
            return
        # A worker that ran a while restarts at once; one that keeps dying backs off.
        if time.monotonic() - worker.ready_at < STABLE_AFTER:
            worker.crashes += 1
        else:
            worker.crashes = 0
        self._task(self._restart(worker))

    async def _restart(self, worker: _Worker) -> None:
        await asyncio.to_thread(self._reap, worker, 5.0)
        code = worker.process.returncode if worker.process is not None else None
        delay = min(MAX_RESTART_DELAY, RESTART_DELAY * 2 ** min(worker.crashes, 5))
        log.warning(
            "share-server worker %d exited (code %s); restarting it in %.0f s",
            worker.index,
            code,
            delay,
        )
        await asyncio.sleep(delay)
        if self._closing:
            return
        worker.generation += 1
        worker.restarts += 1
        self.counters.worker_restarts += 1
        self._spawn(worker)
        try:
            await self._wait_ready(worker)
        except RuntimeError as exc:
            log.error("%s", exc)
            worker.crashes += 1
            if worker.pipe is not None:
                worker.pipe.close()
            self._task(self._restart(worker))

    def _task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # work ---------------------------------------------------------------------------------

    def _on_work_threadsafe(self, work: WorkTemplate) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._broadcast, work)

    def _broadcast(self, work: WorkTemplate) -> None:
        started = time.perf_counter()
        data = pickle.dumps(("work", work), protocol=pickle.HIGHEST_PROTOCOL)
        for worker in self._workers:
            if worker.pipe is not None:
                worker.pipe.send_pickled(data)
        self.counters.last_broadcast = time.perf_counter() - started

    # status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The workers' latest reports summed (up to STATUS_INTERVAL old), plus our own."""
        reports = [w.status for w in self._workers]
        out: dict[str, Any] = {"port": self.port, "sv1_port": self.sv1_port or None}
        for key in _SUMMED:
            out[key] = sum(r.get(key, 0) for r in reports)
        workers: dict[str, dict[str, Any]] = {}
        for report in reports:
            for name, stats in report.get("workers", {}).items():
                merged = workers.get(name)
                if merged is None:
                    workers[name] = dict(stats, rejected=dict(stats["rejected"]))
                    continue
                merged["accepted"] += stats["accepted"]
                merged["shares_sum"] += stats["shares_sum"]
                merged["blocks_found"] += stats["blocks_found"]
                merged["best_difficulty"] = max(merged["best_difficulty"], stats["best_difficulty"])
                times = [t for t in (merged["last_share_time"], stats["last_share_time"]) if t]
                merged["last_share_time"] = max(times) if times else None
                for reason, count in stats["rejected"].items():
                    merged["rejected"][reason] = merged["rejected"].get(reason, 0) + count
        out["workers"] = workers
        # The parent's own block verdicts are the ones that count (workers only forward).
        out["blocks_accepted"] = self.counters.blocks_accepted
        out["share_server_workers"] = [
            {
                "index": w.index,
                "pid": w.process.pid if w.process is not None else None,
                "alive": bool(w.process is not None and w.process.poll() is None),
                "restarts": w.restarts,
                "connections": w.status.get("connections", 0),
                "shares_accepted": w.status.get("shares_accepted", 0),
            }
            for w in self._workers
        ]
        out["worker_restarts"] = self.counters.worker_restarts
        out["shares_forwarded"] = self.counters.shares_forwarded
        out["last_broadcast_seconds"] = self.counters.last_broadcast
        return out
