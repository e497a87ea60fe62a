"""`blvm node`: run the pruned validating node (P2P sync and relay)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from node.chain.chainstate import Chainstate, ChainstateError
from node.chain.params import get as get_params
from node.net.p2p_node import P2PNode

log = logging.getLogger("blvm.node")
STATUS_EVERY = 10.0


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
        raise argparse.ArgumentTypeError(f"{text!r}: port must be a number") from None


async def run_node(args: argparse.Namespace) -> int:
    params = get_params(args.chain)
    net = params.networks_entry()
    datadir = Path(args.datadir) if args.datadir else default_datadir(params.name)
    datadir.mkdir(parents=True, exist_ok=True)
    try:
        chain = Chainstate.open(datadir, params, prune_mib=args.prune)
    except (ChainstateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    connect = [parse_hostport(c, net.default_port) for c in args.connect]
    listen = (
        (args.bind, args.port if args.port is not None else net.default_port)
        if args.listen
        else None
    )
    node = P2PNode(chain, listen=listen, connect=connect, datadir=datadir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    log.info("node running: chain %s, datadir %s, height %d", params.name, datadir, chain.height)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY)
            best = chain.tree.best
            log.info("height %d, headers %d, peers %d", chain.height, best.height, len(node.peers))
    finally:
        await node.stop()
        chain.close()
    return 0


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(run_node(args))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "node",
        help="run the validating node (P2P sync and relay)",
        description="Run the pruned validating node. With no options it starts a regtest node "
        "in ~/.local/share/blvm/regtest listening on the network's default port.",
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
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="N", help="P2P port (default: the network's)")
    p.set_defaults(func=_run)
