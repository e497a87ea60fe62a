"""The running node: chainstate + P2P + JSON-RPC + SV2 template provider (unit ``blvm-node``).

Start order follows what depends on what: the chainstate opens (and recovers
from an unclean stop), networking starts, the SV2 template provider listens, then
the RPC with a fresh cookie (so the cookie means "everything is up"). Stop runs in
reverse and flushes the chainstate last, so a clean shutdown leaves
nothing to replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.chain.chainstate import Chainstate
from node.chain.params import ChainParams
from node.mempool import Mempool
from node.mining.template import TemplateBuilder
from node.mining.template_provider import TemplateProvider, TemplateProviderConfig
from node.mining.tp_keys import load_or_create_keys
from node.net.p2p_node import P2PNode
from node.rpc import blockchain, control, mempool_rpc, mining, net, rawtx, template_rpc
from node.rpc.auth import Authenticator, write_cookie
from node.rpc.context import NodeContext
from node.rpc.dispatch import Dispatcher
from node.rpc.server import RpcServer

log = logging.getLogger(__name__)
RPC_MODULES = (blockchain, control, mempool_rpc, mining, net, rawtx, template_rpc)
MEMPOOL_FILE = "mempool.dat"


@dataclass(slots=True)
class NodeConfig:
    params: ChainParams
    datadir: Path
    prune_mib: float = 0
    fast_prune: bool = False
    listen: tuple[str, int] | None = None
    connect: list[tuple[str, int]] = field(default_factory=list)
    rpc_bind: str = "127.0.0.1"
    rpc_port: int | None = None  # None: the network's default; 0: any free port
    rpc_enabled: bool = True
    rpcauth: list[str] = field(default_factory=list)
    #: SV2 Template Provider: None = off (library default; ``blvm node`` turns it on);
    #: 0 = any free port. Keys live in ``datadir/sv2_tp_keys.json``.
    sv2_tp_port: int | None = None
    sv2_tp_bind: str = "127.0.0.1"
    sv2_tp_fee_delta: int = 1_000  # satoshis
    sv2_tp_interval: float = 30.0  # seconds between fee-driven template updates
    sv2_tp_empty_first: bool = False  # on a new tip, an empty template before the full one
    #: False when the port is only the default: if it is taken (a second node on the
    #: machine), the node runs on without a template provider instead of failing to start.
    sv2_tp_required: bool = True
    #: Bitcoin Core's IPC Mining interface (Cap'n Proto) on this unix socket; None = off.
    ipc_socket: Path | None = None


class NodeService:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.chain: Chainstate | None = None
        self.mempool: Mempool | None = None
        self.p2p: P2PNode | None = None
        self.rpc: RpcServer | None = None
        self.ctx: NodeContext | None = None
        self.template_provider: TemplateProvider | None = None
        self.ipc: Any = None  # node.ipc.mining_ipc.IpcMiningServer when configured
        self._stop = asyncio.Event()
        self._cookie: Path | None = None

    def request_stop(self) -> None:
        """Thread-safe: ask the service to stop (RPC ``stop``, signals)."""
        loop = self.ctx.loop if self.ctx else None
        if loop is not None:
            loop.call_soon_threadsafe(self._stop.set)

    async def start(self) -> None:
        cfg = self.config
        cfg.datadir.mkdir(parents=True, exist_ok=True)
        self.chain = Chainstate.open(
            cfg.datadir, cfg.params, prune_mib=cfg.prune_mib, fast_prune=cfg.fast_prune
        )
        self.mempool = Mempool(self.chain)
        mempool_file = cfg.datadir / MEMPOOL_FILE
        if mempool_file.exists():
            loaded = self.mempool.load(str(mempool_file))
            log.info("mempool: %d transactions reloaded", loaded.accepted)
        self.p2p = P2PNode(
            self.chain,
            listen=cfg.listen,
            connect=cfg.connect,
            datadir=cfg.datadir,
            mempool=self.mempool,
        )
        await self.p2p.start()
        self.ctx = NodeContext(
            self.chain,
            p2p=self.p2p,
            mempool=self.mempool,
            loop=asyncio.get_running_loop(),
            request_stop=self.request_stop,
            templates=TemplateBuilder(self.chain, self.mempool),
        )
        self.ctx.longpoll = template_rpc.TipWaiter(self.ctx)
        # Before the RPC: its cookie appearing means the whole node, TP included, is up.
        if cfg.sv2_tp_port is not None:
            self.template_provider = TemplateProvider(
                self.chain,
                self.mempool,
                load_or_create_keys(cfg.datadir),
                TemplateProviderConfig(
                    host=cfg.sv2_tp_bind,
                    port=cfg.sv2_tp_port,
                    fee_delta=cfg.sv2_tp_fee_delta,
                    fee_interval=cfg.sv2_tp_interval,
                    empty_first=cfg.sv2_tp_empty_first,
                ),
            )
            try:
                await self.template_provider.start()
            except OSError as exc:
                self.template_provider = None
                if cfg.sv2_tp_required:
                    raise OSError(
                        f"SV2 template provider cannot listen on {cfg.sv2_tp_bind}:"
                        f"{cfg.sv2_tp_port}: {exc.strerror or exc}; choose another "
                        "--sv2-tp-port or --no-sv2-tp"
                    ) from exc
                log.warning(
                    "SV2 template provider not started: %s:%d: %s (use --sv2-tp-port)",
                    cfg.sv2_tp_bind,
                    cfg.sv2_tp_port,
                    exc.strerror or exc,
                )
        if cfg.ipc_socket is not None:
            from node.ipc.mining_ipc import IpcMiningServer  # pycapnp only when asked for

            self.ipc = IpcMiningServer(self.chain, self.mempool, cfg.ipc_socket)
            self.ipc.start()
        if cfg.rpc_enabled:
            dispatcher = Dispatcher(self.ctx)
            for module in RPC_MODULES:
                dispatcher.register_module(module)
            self.ctx.dispatcher = dispatcher
            auth = Authenticator()
            for line in cfg.rpcauth:
                auth.add_rpcauth(line)
            port = cfg.params.networks_entry().rpc_port if cfg.rpc_port is None else cfg.rpc_port
            self.rpc = RpcServer(dispatcher, auth, cfg.rpc_bind, port)
            self.rpc.start()
            # The cookie appears only once the server listens: its existence means "ready".
            self._cookie, auth.cookie_password = write_cookie(cfg.datadir)

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        if self.rpc is not None:
            self.rpc.stop()
        if self._cookie is not None:
            with contextlib.suppress(FileNotFoundError):
                self._cookie.unlink()
        if self.template_provider is not None:
            await self.template_provider.stop()
            self.template_provider = None
        if self.ipc is not None:
            await asyncio.to_thread(self.ipc.close)
            self.ipc = None
        if self.p2p is not None:
            await self.p2p.stop()
        if self.ctx is not None and self.ctx.longpoll is not None:
            self.ctx.longpoll.unsubscribe()
        if self.mempool is not None:
            count = self.mempool.save(str(self.config.datadir / MEMPOOL_FILE))
            log.info("mempool: %d transactions saved", count)
            self.mempool.close()
        if self.chain is not None:
            self.chain.close()
