"""`blvm node`: run the pruned validating node (P2P sync and relay, JSON-RPC)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from appliance.cli._output import emit
from appliance.paths import node_datadir
from appliance.sdnotify import Notifier
from node.chain.chainstate import ChainstateError
from node.chain.params import get as get_params
from node.chain.prune import PruneConfigError
from node.mining.template_provider import default_port as default_tp_port
from node.mining.tp_keys import KEY_FILE, TpKeyError, load_or_create_keys
from node.service import NodeConfig, NodeService

log = logging.getLogger("blvm.node")
STATUS_EVERY = 30.0


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    try:
        return host, int(port)
    except ValueError:
        raise SystemExit(f"error: {text!r}: port must be a number") from None


def ipc_socket(value: str, datadir: Path) -> Path | None:
    """Bitcoin Core's -ipcbind forms: ``unix`` (node.sock in the datadir) or ``unix:PATH``."""
    if value == "unix":
        return datadir / "node.sock"
    if value.startswith("unix:") and len(value) > 5:
        return Path(value[5:]).expanduser()
    return None


async def run_node(args: argparse.Namespace) -> int:
    params = get_params(args.chain)
    net = params.networks_entry()
    if args.fast_prune and params.name != "regtest":
        print("error: --fast-prune is a regtest-only test mode; drop it", file=sys.stderr)
        return 2
    config = NodeConfig(
        params=params,
        datadir=Path(args.datadir) if args.datadir else node_datadir(params.name),
        prune_mib=args.prune,
        fast_prune=args.fast_prune,
        listen=(args.bind, args.port if args.port is not None else net.default_port)
        if args.listen
        else None,
        connect=[parse_hostport(c, net.default_port) for c in args.connect],
        rpc_bind=args.rpcbind,
        rpc_port=args.rpcport,
        rpc_enabled=args.rpc,
        rpcauth=args.rpcauth,
        sv2_tp_port=(
            args.sv2_tp_port if args.sv2_tp_port is not None else default_tp_port(params.name)
        )
        if args.sv2_tp
        else None,
        sv2_tp_bind=args.sv2_tp_bind,
        sv2_tp_fee_delta=args.sv2_tp_fee_delta,
        sv2_tp_interval=args.sv2_tp_interval,
        sv2_tp_empty_first=args.sv2_tp_empty_first,
        sv2_tp_required=args.sv2_tp_port is not None,
    )
    if args.ipcbind is not None:
        socket = ipc_socket(args.ipcbind, config.datadir)
        if socket is None:
            print(
                f"error: --ipcbind {args.ipcbind!r}: write 'unix' (DATADIR/node.sock) or "
                "'unix:/path/to/socket'",
                file=sys.stderr,
            )
            return 2
        config.ipc_socket = socket
    if args.print_sv2_tp_key:
        return print_tp_key(config.datadir, args.json)
    notifier = Notifier()
    notifier.status(f"opening the {params.name} chainstate in {config.datadir}")
    service = NodeService(config)
    try:
        await service.start()
    except (ChainstateError, PruneConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        notifier.stopping(f"failed to start: {exc}")
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
    tp = service.template_provider
    sv2 = (
        f"SV2 template provider on {config.sv2_tp_bind}:{tp.port} "
        f"(authority public key {tp.keys.authority_public_text})"
        if tp
        else "SV2 template provider off"
    )
    ipc = f"IPC mining interface on {config.ipc_socket}" if service.ipc else "IPC off"
    log.info(
        "node running: chain %s, datadir %s, height %d; %s; %s; %s",
        params.name,
        config.datadir,
        chain.height,
        rpc,
        sv2,
        ipc,
    )

    def status() -> str:
        assert chain is not None and service.p2p is not None
        peers = len(service.p2p.peers)
        return f"height {chain.height}, headers {chain.tree.best.height}, peers {peers}"

    notifier.ready(status())
    watchdog = asyncio.create_task(notifier.watchdog())
    try:
        waiter = asyncio.create_task(service.wait())
        while not waiter.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), STATUS_EVERY)
            log.info("%s", status())
            notifier.status(status())
    finally:
        notifier.stopping("flushing the chainstate")
        watchdog.cancel()
        await service.stop()
        notifier.close()
    return 0


def print_tp_key(datadir: Path, as_json: bool) -> int:
    """Show (creating if needed) the template provider's authority key, for pool configs."""
    try:
        keys = load_or_create_keys(datadir)
    except (TpKeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = keys.authority_public_text
    emit(
        {"authority_public_key": text, "key_file": str(datadir / KEY_FILE)},
        as_json,
        f"{text}\n(put it in the pool's [template_provider_type.Sv2Tp] public_key)",
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    return asyncio.run(run_node(args))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "node",
        help="run the validating node (P2P, JSON-RPC)",
        description="Run the pruned validating node. With no options it starts a regtest node in "
        "~/.local/share/blvm/regtest, P2P on 127.0.0.1:18444 and JSON-RPC on 127.0.0.1:18443 "
        "(cookie authentication: the .cookie file in the datadir), and the Stratum V2 template "
        "provider on 127.0.0.1:18447 (its authority key: --print-sv2-tp-key).",
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
        "--fast-prune",
        action="store_true",
        help="regtest-only TEST mode (like Core's -fastprune): 64 KiB block files, any --prune "
        "target (fractions of a MiB), pruning from height 100; never for real data",
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
    p.add_argument(
        "--sv2-tp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve Stratum V2 templates (Template Distribution Protocol over Noise) to a local "
        "pool / JD client / our SV2 module (default on)",
    )
    p.add_argument(
        "--sv2-tp-bind",
        default="127.0.0.1",
        help="template provider listen address (default 127.0.0.1)",
    )
    p.add_argument(
        "--sv2-tp-port",
        type=int,
        metavar="N",
        help="template provider port (default: 8442 mainnet, 48442 testnet4, 38442 signet, "
        "18447 regtest; 0 = any free port)",
    )
    p.add_argument(
        "--sv2-tp-fee-delta",
        type=int,
        default=1000,
        metavar="SAT",
        help="send a new template when fees rose by at least this many satoshis (default 1000)",
    )
    p.add_argument(
        "--sv2-tp-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="at most one fee-driven template update per this many seconds (default 30)",
    )
    p.add_argument(
        "--sv2-tp-empty-first",
        action="store_true",
        help="on a new tip send an empty template at once, then the full one (less work on "
        "the old tip; a block found in between carries no fees)",
    )
    p.add_argument(
        "--ipcbind",
        metavar="unix[:PATH]",
        help="serve Bitcoin Core's IPC Mining interface (Cap'n Proto, schema 30) on a unix "
        "socket, for Stratum V2 software written for Core (SRI's pool_sv2 with "
        "template_provider_type BitcoinCoreIpc, its JDS, sv2-tp): 'unix' = DATADIR/node.sock "
        "(point the pool's data_dir at the datadir's parent, or at the datadir on mainnet)",
    )
    p.add_argument(
        "--print-sv2-tp-key",
        action="store_true",
        help="print the template provider's authority public key (base58, as pools expect it) "
        "and exit; creates the key in the datadir if there is none",
    )
    p.add_argument("--json", action="store_true", help="with --print-sv2-tp-key: print JSON")
    p.set_defaults(func=_run)
