"""One share-server worker process: a full `Sv2Server` on the shared ports.

Started by the parent as ``python -m appliance.stratum_v2.worker_process FD`` (a fresh
interpreter: nothing inherited from the parent's event loop or threads).

The parent (`workers.WorkerPool`) owns the template source, the upstream share sink and
block submission; this process gets work down its pipe and sends up found blocks, accepted
shares (batched per event-loop turn, only when the parent forwards them upstream) and its
status. It exits when the parent is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import pickle
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.source import PushedWorkSource
from appliance.stratum_v2.upstream.base import UpstreamShare
from appliance.stratum_v2.worker_pipe import PipeEnd
from protocols.bitcoin.block import Block
from protocols.sv2.noise import Certificate

__all__ = ["STATUS_INTERVAL", "WorkerSpec", "run_worker"]

log = logging.getLogger("blvm.stratum_v2.workers")

STATUS_INTERVAL = 0.25  # seconds between status reports to the parent
BLOCK_TIMEOUT = 120.0  # the parent's answer to a submitted block


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    config: Sv2ServerConfig  # ports fixed, reuse_port set, channel ids of this worker
    static_secret: bytes
    certificate: Certificate
    extranonce_size: int
    forward_shares: bool
    log_level: int


class PipeWorkSource(PushedWorkSource):
    """The worker's `TemplateSource`: work pushed from the parent, blocks back to it."""

    def __init__(self, pipe: PipeEnd, extranonce_size: int) -> None:
        super().__init__(extranonce_size=extranonce_size, block_sink=self._submit)
        self.pipe = pipe
        self._answers: dict[int, concurrent.futures.Future[str | None]] = {}
        self._ids = itertools.count(1)

    def refresh(self, force: bool = False) -> None:
        self.pipe.send("refresh", force)  # the parent's source decides; new work comes down

    def _submit(self, block: Block) -> str | None:
        """Runs in a thread (the server's `to_thread`): waits for the parent's verdict."""
        request = next(self._ids)
        answer: concurrent.futures.Future[str | None] = concurrent.futures.Future()
        self._answers[request] = answer
        self.pipe.send("block", request, block.serialize())
        try:
            return answer.result(BLOCK_TIMEOUT)
        except concurrent.futures.TimeoutError:
            return "no-answer-from-parent"
        finally:
            self._answers.pop(request, None)

    def answer(self, request: int, reason: str | None) -> None:
        future = self._answers.get(request)
        if future is not None and not future.done():
            future.set_result(reason)


class _ShareBatcher:
    """Collects accepted shares and sends them in one message per event-loop turn."""

    def __init__(self, pipe: PipeEnd, loop: asyncio.AbstractEventLoop) -> None:
        self.pipe = pipe
        self.loop = loop
        self.batch: list[UpstreamShare] = []

    def __call__(self, share: UpstreamShare) -> None:
        if not self.batch:
            self.loop.call_soon(self.flush)
        self.batch.append(share)

    def flush(self) -> None:
        if self.batch:
            self.pipe.send("shares", self.batch)
            self.batch = []


def run_worker(spec: WorkerSpec, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    logging.basicConfig(
        level=spec.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s[w{spec.index}]: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(spec, conn))


def main(argv: list[str]) -> int:
    """``python -m appliance.stratum_v2.worker_process FD``: FD is the parent's socket; the
    first message on it is the `WorkerSpec`."""
    conn = Connection(int(argv[0]))
    try:
        kind, spec = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return 1
    if kind != "spec":
        return 2
    run_worker(spec, conn)
    return 0


async def _main(spec: WorkerSpec, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    pipe = PipeEnd(conn, f"worker{spec.index}")
    source = PipeWorkSource(pipe, spec.extranonce_size)
    sink = _ShareBatcher(pipe, loop) if spec.forward_shares else None
    server = Sv2Server(source, spec.static_secret, spec.certificate, spec.config, share_sink=sink)
    stop = asyncio.Event()

    def on_message(message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "work":
            source.push(message[1])
        elif kind == "block_result":
            source.answer(message[1], message[2])
        elif kind == "stop":
            stop.set()

    pipe.start_reading(loop, on_message, stop.set)  # EOF: the parent is gone
    try:
        await server.start()
        pipe.send("ready", server.port, server.sv1_port)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_INTERVAL)
            pipe.send("status", server.status())
    finally:
        await server.close()
        if sink is not None:
            sink.flush()
        pipe.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
