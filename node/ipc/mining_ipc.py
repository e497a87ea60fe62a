"""Bitcoin Core's IPC Mining interface (Cap'n Proto, schema major version 30) on a unix socket.

Stratum V2 software written for Bitcoin Core (SRI's `pool_sv2` with its built-in Job
Declaration Server, sv2-tp) connects to `<datadir>/<network>/node.sock` and asks for block
templates, waits for better ones, submits solutions and has declared blocks checked. This
serves that interface from our chainstate and mempool, so such software runs on our node.

The schema files in `schema/` are ours; their file ids and type names equal Bitcoin Core's,
because interface ids travel in every call. libmultiprocess's thread handles (`Context`,
`ThreadMap`) are accepted and ignored: every call runs on this server's own event loop, and
anything that blocks (waiting for a tip, connecting a block) runs in a worker thread.
The server runs on its own thread with its own event loop (pycapnp's KJ loop on asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import capnp

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.headers import check_proof_of_work
from node.mining.template import BlockTemplate, TemplateBuilder
from protocols.bitcoin.block import Block, BlockHeader
from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.merkle import merkle_branch, merkle_root
from protocols.bitcoin.tx import Tx

__all__ = ["SCHEMA_DIR", "IpcMiningServer", "load_schemas", "socket_path"]

log = logging.getLogger("blvm.node.ipc")

SCHEMA_DIR = Path(__file__).parent / "schema"
#: Core's template coinbase pays OP_TRUE: the pool replaces every valued output anyway.
TEMPLATE_PAYOUT = b"\x51"
MAX_TIP_AGE = 24 * 3600  # Core's initial-block-download tip age
REBUILD_INTERVAL = 1.0  # seconds between template builds while a wait sees the mempool move
_NETWORK_SUBDIRS = {"mainnet": None, "testnet": "testnet3", "testnet4": "testnet4"}


def socket_path(datadir: Path, network: str) -> Path:
    """Where Core puts node.sock for `network` (a subdirectory except on mainnet)."""
    sub = _NETWORK_SUBDIRS.get(network, network)
    return datadir / sub / "node.sock" if sub else datadir / "node.sock"


def load_schemas() -> tuple[Any, Any, Any]:
    """(init, mining, proxy) schema modules."""
    capnp.remove_import_hook()
    imports = [str(SCHEMA_DIR)]
    return (
        capnp.load(str(SCHEMA_DIR / "init.capnp"), imports=imports),
        capnp.load(str(SCHEMA_DIR / "mining.capnp"), imports=imports),
        capnp.load(str(SCHEMA_DIR / "proxy.capnp"), imports=imports),
    )


_init_capnp, _mining_capnp, _proxy_capnp = load_schemas()


@dataclasses.dataclass(slots=True)
class _Built:
    """One template as handed out: the node's template and its block (coinbase included)."""

    template: BlockTemplate
    block: Block

    @property
    def fees(self) -> int:
        return self.template.total_fees


class _Node:
    """What the interface needs of the node: templates, tip waits, blocks in."""

    def __init__(self, chain: Chainstate, mempool: Any) -> None:
        self.chain = chain
        self.mempool = mempool
        self.builder = TemplateBuilder(chain, mempool)
        self.changed = threading.Condition()
        self._unsubscribe = chain.subscribe(self.wake)
        self._unlisten = mempool.add_listener(self.wake) if mempool is not None else None

    def wake(self, *_args: object) -> None:
        with self.changed:
            self.changed.notify_all()

    def close(self) -> None:
        self._unsubscribe()
        if self._unlisten is not None:
            self._unlisten()

    def build(self) -> _Built:
        template = self.builder.build()
        return _Built(template, template.to_block(TEMPLATE_PAYOUT))

    def wait_next(self, last: _Built, timeout_s: float, fee_threshold: int, stop) -> _Built | None:
        """A template on a new tip, or one whose fees beat `last` by `fee_threshold`; None
        when `timeout_s` passes (or `stop` is set) first. A busy mempool is re-assembled at
        most once per REBUILD_INTERVAL. Templates are built outside `changed`: the chain
        notifies under its own lock, which building takes."""
        deadline = time.monotonic() + timeout_s
        prev = last.template.previousblockhash
        pool = self.mempool
        seen = last.template.mempool_sequence
        next_build = 0.0
        while not stop.is_set():
            if self.chain.tip.hash != prev:
                return self.build()
            now = time.monotonic()
            if pool is not None and pool.sequence != seen and now >= next_build:
                candidate = self.build()
                if candidate.template.previousblockhash != prev:
                    return candidate
                if candidate.fees - last.fees >= fee_threshold:
                    return candidate
                seen = candidate.template.mempool_sequence
                next_build = now + REBUILD_INTERVAL
            remaining = deadline - now
            if remaining <= 0:
                return None
            with self.changed:  # sleep unless something moved since the checks above
                quiet = pool is None or pool.sequence == seen or now < next_build
                if self.chain.tip.hash == prev and quiet and not stop.is_set():
                    self.changed.wait(min(remaining, REBUILD_INTERVAL))
        return None

    def wait_tip(self, current: bytes, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while self.chain.tip.hash == current:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.changed.wait(min(remaining, 1.0))

    def submit(self, built: _Built, version: int, timestamp: int, nonce: int, raw: bytes) -> bool:
        """The template's block with the pool's coinbase and header fields, to the chain."""
        try:
            coinbase = Tx.from_bytes(raw)
        except (BitcoinProtocolError, ValueError, IndexError) as exc:
            log.warning("IPC submitSolution: undecodable coinbase: %s", exc)
            return False
        txs = [coinbase, *built.block.txs[1:]]
        root, _ = merkle_root([tx.txid for tx in txs])
        header = BlockHeader(
            version, built.template.previousblockhash, root, timestamp, built.template.bits, nonce
        )
        result = self.chain.process_block(Block(header, txs))
        ok = result.status in (BlockStatus.ACCEPTED, BlockStatus.DUPLICATE)
        log.info("IPC submitSolution: block %s %s", header.hash[::-1].hex(), result.status.value)
        return ok

    def check(self, raw: bytes, check_merkle_root: bool, check_pow: bool) -> str | None:
        try:
            block = Block.from_bytes(raw)
        except (BitcoinProtocolError, ValueError, IndexError):
            return "inconclusive-decode-failed"
        if not block.txs or not block.txs[0].is_coinbase():
            return "bad-cb-missing"
        if not check_merkle_root:  # judge everything but the root the caller did not fill
            root, _ = merkle_root([tx.txid for tx in block.txs])
            block = Block(dataclasses.replace(block.header, merkle_root=root), block.txs)
        if check_pow and not check_proof_of_work(block.hash, block.header.bits, self.chain.params):
            return "high-hash"
        return self.chain.test_block_validity(block)


# the interfaces ---------------------------------------------------------------------------


class _ThreadImpl(_proxy_capnp.Thread.Server):
    def __init__(self, name: str) -> None:
        self.name = name

    async def getName(self, _context: Any, **_: Any) -> str:
        return self.name


class _ThreadMapImpl(_proxy_capnp.ThreadMap.Server):
    async def makeThread(self, name: str, _context: Any, **_: Any) -> Any:
        return _ThreadImpl(name or "ipc")


class _BlockTemplateImpl(_mining_capnp.BlockTemplate.Server):
    def __init__(self, node: _Node, built: _Built) -> None:
        self.node = node
        self.built = built
        self.interrupt = threading.Event()

    async def destroy(self, _context: Any, **_: Any) -> None:
        self.interrupt.set()
        self.node.wake()

    async def getBlockHeader(self, _context: Any, **_: Any) -> bytes:
        return self.built.block.header.serialize()

    async def getBlock(self, _context: Any, **_: Any) -> bytes:
        return self.built.block.serialize()

    async def getTxFees(self, _context: Any, **_: Any) -> list[int]:
        return [t.fee for t in self.built.template.transactions]

    async def getTxSigops(self, _context: Any, **_: Any) -> list[int]:
        return [t.sigops for t in self.built.template.transactions]

    async def getCoinbaseTx(self, _context: Any, **_: Any) -> bytes:
        return self.built.block.txs[0].serialize()

    async def getCoinbaseCommitment(self, _context: Any, **_: Any) -> bytes:
        return self.built.template.default_witness_commitment or b""

    async def getWitnessCommitmentIndex(self, _context: Any, **_: Any) -> int:
        commitment = self.built.template.default_witness_commitment
        outputs = self.built.block.txs[0].outputs
        for index, out in enumerate(outputs):
            if commitment is not None and out.script_pubkey == commitment:
                return index
        return -1

    async def getCoinbaseMerklePath(self, _context: Any, **_: Any) -> list[bytes]:
        return list(merkle_branch([tx.txid for tx in self.built.block.txs], 0))

    async def submitSolution(
        self, version: int, timestamp: int, nonce: int, coinbase: bytes, _context: Any, **_: Any
    ) -> bool:
        return await asyncio.to_thread(
            self.node.submit, self.built, version, timestamp, nonce, bytes(coinbase)
        )

    async def waitNext(self, options: Any, _context: Any, **_: Any) -> None:
        self.interrupt.clear()
        timeout_s = max(0.0, min(float(options.timeout) / 1000.0, 3600.0))
        built = await asyncio.to_thread(
            self.node.wait_next, self.built, timeout_s, int(options.feeThreshold), self.interrupt
        )
        if built is not None:  # else the result stays a null capability: nothing better yet
            _context.results.result = _BlockTemplateImpl(self.node, built)

    async def interruptWait(self, _context: Any, **_: Any) -> None:
        self.interrupt.set()


class _MiningImpl(_mining_capnp.Mining.Server):
    def __init__(self, node: _Node) -> None:
        self.node = node

    async def isTestChain(self, _context: Any, **_: Any) -> bool:
        return self.node.chain.params.name != "mainnet"

    async def isInitialBlockDownload(self, _context: Any, **_: Any) -> bool:
        chain = self.node.chain
        return chain.params.name != "regtest" and time.time() - chain.tip.time > MAX_TIP_AGE

    async def getTip(self, _context: Any, **_: Any) -> None:
        tip = self.node.chain.tip
        _context.results.result.hash = tip.hash
        _context.results.result.height = tip.height
        _context.results.hasResult = True

    async def waitTipChanged(
        self, currentTip: bytes, timeout: float, _context: Any, **_: Any
    ) -> None:
        timeout_s = max(0.0, min(float(timeout) / 1000.0, 3600.0))
        await asyncio.to_thread(self.node.wait_tip, bytes(currentTip), timeout_s)
        tip = self.node.chain.tip
        _context.results.result.hash = tip.hash
        _context.results.result.height = tip.height

    async def createNewBlock(self, options: Any, _context: Any, **_: Any) -> Any:
        built = await asyncio.to_thread(self.node.build)
        return _BlockTemplateImpl(self.node, built)

    async def checkBlock(self, block: bytes, options: Any, _context: Any, **_: Any) -> None:
        reason = await asyncio.to_thread(
            self.node.check, bytes(block), bool(options.checkMerkleRoot), bool(options.checkPow)
        )
        _context.results.reason = reason or ""
        _context.results.debug = ""
        _context.results.result = reason is None


class _InitImpl(_init_capnp.Init.Server):
    def __init__(self, node: _Node) -> None:
        self.node = node

    async def construct(self, threadMap: Any, _context: Any, **_: Any) -> Any:
        return _ThreadMapImpl()

    async def makeMining(self, _context: Any, **_: Any) -> Any:
        return _MiningImpl(self.node)


# the server ---------------------------------------------------------------------------------


class IpcMiningServer:
    """node.sock for Core-speaking mining software. `start()`, then `close()`."""

    def __init__(self, chain: Chainstate, mempool: Any, path: Path) -> None:
        self.path = path
        self.node = _Node(chain, mempool)
        self.connections = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Listen on `path`. A socket file left by a killed node is replaced; anything else
        there (a live server, a regular file) is an OSError that names the path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clear_stale_socket()
        self._thread = threading.Thread(target=self._run, name="ipc-mining", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise OSError(f"IPC socket {self.path}: cannot listen: {self._error}")
        log.info("IPC mining interface (Bitcoin Core schema 30) on %s", self.path)

    def _clear_stale_socket(self) -> None:
        path = self.path
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"IPC socket {path}: something else is there; choose another --ipcbind")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # nobody answers: left by a node that was killed
            return
        finally:
            probe.close()
        raise OSError(f"IPC socket {path}: another process serves it (a second node?)")

    def _run(self) -> None:
        try:
            asyncio.run(capnp.run(self._main()))
        except BaseException as exc:  # reported to start(), logged otherwise
            self._error = exc
            self._ready.set()
            log.exception("IPC mining interface stopped")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        async def serve(stream: Any) -> None:
            self.connections += 1
            try:
                await capnp.TwoPartyServer(stream, bootstrap=_InitImpl(self.node)).on_disconnect()
            finally:
                self.connections -= 1

        server = await capnp.AsyncIoStream.create_unix_server(serve, str(self.path))
        os.chmod(self.path, 0o600)  # like Core's: only the node's user may mine through it
        self._ready.set()
        async with server:
            await self._stop.wait()

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.node.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
