"""`blvm node`: run the pruned validating node (P2P sync and relay, JSON-RPC)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from node.chain.chainstate import ChainstateError
from node.chain.params import get as get_params
from node.chain.prune import PruneConfigError
from node.service import NodeConfig, NodeService

log = logging.getLogger("blvm.node")
STATUS_EVERY = 30.0


def default_datadir(chain: str) -> Path:
    base = os.environ.get("BLVM_DATADIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "blvm"
    )
    return Path(base) / chain


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    try:
        return host, int(port)
    except ValueError:
        raise SystemExit(f"error: {text!r}: port must be a number") from None


async def run_node(args: argparse.Namespace) -> int:
    params = get_params(args.chain)
    net = params.networks_entry()
    config = NodeConfig(
        params=params,
        datadir=Path(args.datadir) if args.datadir else default_datadir(params.name),
        prune_mib=args.prune,
        listen=(args.bind, args.port if args.port is not None else net.default_port)
        if args.listen
        else None,
        connect=[parse_hostport(c, net.default_port) for c in args.connect],
        rpc_bind=args.rpcbind,
        rpc_port=args.rpcport,
        rpc_enabled=args.rpc,
        rpcauth=args.rpcauth,
    )
    service = NodeService(config)
    try:
        await service.start()
    except (ChainstateError, PruneConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        await service.stop()
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.request_stop)
    chain = service.chain
    assert chain is not None
    rpc = (
        f"RPC on {config.rpc_bind}:{service.rpc.port} (cookie in {config.datadir / '.cookie'})"
        if service.rpc
        else "RPC off"
    )
    log.info(
        "node running: chain %s, datadir %s, height %d; %s",
        params.name,
        config.datadir,
        chain.height,
        rpc,
    )
    try:
        waiter = asyncio.create_task(service.wait())
        while not waiter.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), STATUS_EVERY)
            log.info(
                "height %d, headers %d, peers %d",
                chain.height,
                chain.tree.best.height,
                len(service.p2p.peers),
            )
    finally:
        await service.stop()
    return 0


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(run_node(args))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "node",
        help="run the validating node (P2P, JSON-RPC)",
        description="Run the pruned validating node. With no options it starts a regtest node in "
        "~/.local/share/blvm/regtest, P2P on 127.0.0.1:18444 and JSON-RPC on 127.0.0.1:18443 "
        "(cookie authentication: the .cookie file in the datadir).",
    )
    p.add_argument(
        "--chain", default="regtest", help="mainnet, testnet4, signet or regtest (default regtest)"
    )
    p.add_argument(
        "--datadir", metavar="DIR", help="chain data directory (default ~/.local/share/blvm/CHAIN)"
    )
    p.add_argument(
        "--prune",
        type=float,
        default=0,
        metavar="MiB",
        help="prune block files to this target (0 = keep all; else >= 550)",
    )
    p.add_argument(
        "--connect",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="peer to stay connected to (repeatable)",
    )
    p.add_argument(
        "--listen",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accept inbound peers (default on)",
    )
    p.add_argument("--bind", default="127.0.0.1", help="P2P listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="N", help="P2P port (default: the network's)")
    p.add_argument(
        "--rpc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve JSON-RPC (default on)",
    )
    p.add_argument(
        "--rpcbind",
        default="127.0.0.1",
        help="RPC listen address (default 127.0.0.1; only change it behind a firewall)",
    )
    p.add_argument("--rpcport", type=int, metavar="N", help="RPC port (default: the network's)")
    p.add_argument(
        "--rpcauth",
        action="append",
        default=[],
        metavar="USER:SALT$HASH",
        help="extra RPC credentials in Bitcoin Core's rpcauth format (repeatable)",
    )
    p.set_defaults(func=_run)
