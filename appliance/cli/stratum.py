"""`blvm stratum`: the Stratum V2 module (unit blvm-stratum-v2) in the foreground.

Miners connect over SV2 (Noise) or SV1; work comes from the configured pools in priority
order, with solo mining on the node's templates (Template Distribution) as the last resort.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from appliance.cli._output import emit
from appliance.config import ConfigError, StratumConfig, load_stratum_config
from appliance.node_rpc import NodeRpc
from appliance.paths import data_root, node_datadir
from appliance.sdnotify import Notifier
from appliance.stratum_v2.jd_server import JdServer, JdServerConfig
from appliance.stratum_v2.jd_tokens import JobTokenRegistry
from appliance.stratum_v2.jobs import DEFAULT_EXTRANONCE_SPACE, SOLO_EXTRANONCE_SPACE
from appliance.stratum_v2.keys import load_or_create_keys
from appliance.stratum_v2.node_link import NodeLink
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.upstream.errors import UpstreamConfigError
from appliance.stratum_v2.upstream.factory import UpstreamSpec, build_upstream
from appliance.stratum_v2.upstream.failover import FailoverSource
from appliance.stratum_v2.workers import WorkerPool
from protocols.bitcoin.networks import get_network
from protocols.sv2.keys import decode_authority_public_key

log = logging.getLogger("blvm.stratum")
DEFAULT_CONFIG = "/etc/blvm/blvm.toml"
STATUS_EVERY = 30.0


def default_state_dir() -> Path:
    return data_root() / "stratum-v2"


def _load(path: str) -> StratumConfig | None:
    try:
        return load_stratum_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None


def build_jds(cfg: StratumConfig, keys: Any) -> tuple[JdServer, JobTokenRegistry] | None:
    """The Job Declaration Server `jds_listen` asks for, talking to the node over RPC."""
    if cfg.jds_listen is None:
        return None
    rpc_host, rpc_port = "127.0.0.1", get_network(cfg.chain).rpc_port
    if cfg.node_rpc is not None:
        rpc_host, rpc_port = cfg.node_rpc.host, cfg.node_rpc.port
    cookie_dir = Path(cfg.node_rpc_cookie_dir or node_datadir(cfg.chain))
    rpc = NodeRpc(rpc_host, rpc_port, cookie_dir=cookie_dir)
    tokens = JobTokenRegistry()
    jds = JdServer(
        tokens, keys.static_secret, keys.certificate, rpc, cfg.payout_script,
        JdServerConfig(host=cfg.jds_listen.host, port=cfg.jds_listen.port),
    )  # fmt: skip
    return jds, tokens


def _with_solo_last(cfg: StratumConfig) -> list[UpstreamSpec]:
    """The configured pools; solo on the node is always the last resort."""
    pools = list(cfg.pools)
    if not any(p.kind == "solo" for p in pools):
        pools.append(UpstreamSpec("solo", payout_script=cfg.payout_script))
    return pools


def extranonce_space(cfg: StratumConfig) -> int:
    """Extranonce bytes of the coinbases we hand to miners.

    With a pool configured, what we ask of it (our space must fit in its channel). Solo on
    our node only, the SV2 maximum: a downstream proxy (another appliance using us as its
    pool) needs its own 20 bytes after our channel prefix.
    """
    if all(spec.kind == "solo" for spec in cfg.pools):
        return SOLO_EXTRANONCE_SPACE
    return DEFAULT_EXTRANONCE_SPACE


async def run_stratum(cfg: StratumConfig, state_dir: Path) -> int:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        keys = load_or_create_keys(state_dir, now=int(time.time()))
    except OSError as exc:
        print(f"error: key directory {state_dir}: {exc}; pass --state-dir", file=sys.stderr)
        return 2
    space = extranonce_space(cfg)
    authority = decode_authority_public_key(cfg.node_tp_key) if cfg.node_tp_key else None
    if authority is None:
        log.warning("node_tp_key not set: the node's template provider is not authenticated")
    link = NodeLink(
        cfg.node_tp.host, cfg.node_tp.port, cfg.payout_script, authority=authority,
        extranonce_size=space,
    )  # fmt: skip
    try:
        node_tp = (cfg.node_tp.host, cfg.node_tp.port, authority)
        upstreams = [
            build_upstream(s, space, solo_source=lambda _s: link, node_tp=node_tp)
            for s in _with_solo_last(cfg)
        ]
    except UpstreamConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failover = FailoverSource(upstreams, space)
    jd = build_jds(cfg, keys)
    server_config = Sv2ServerConfig(
        host=cfg.sv2_listen.host,
        port=cfg.sv2_listen.port,
        shares_per_minute=cfg.shares_per_minute,
        sv1_port=cfg.sv1_listen.port if cfg.sv1_listen else None,
        sv1_host=cfg.sv1_listen.host if cfg.sv1_listen else None,
    )
    server: Sv2Server | WorkerPool
    if cfg.workers > 1:  # the config refuses workers > 1 with a JDS
        server = WorkerPool(
            failover, keys.static_secret, keys.certificate, server_config, cfg.workers,
            share_sink=failover.share_sink,
        )  # fmt: skip
    else:
        server = Sv2Server(
            failover, keys.static_secret, keys.certificate, server_config,
            share_sink=failover.share_sink, job_tokens=jd[1] if jd else None,
        )  # fmt: skip
    notifier = Notifier()
    tasks = [asyncio.create_task(link.run()), asyncio.create_task(failover.run())]
    tasks.append(asyncio.create_task(notifier.watchdog()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await server.start()
            if jd is not None:
                await jd[0].start()
        except OSError as exc:
            print(
                f"error: cannot listen: {exc}; change sv2_listen/sv1_listen/jds_listen",
                file=sys.stderr,
            )
            return 2
        except RuntimeError as exc:  # a share-server worker did not come up
            print(f"error: {exc}; see its log above, or set workers = 1", file=sys.stderr)
            return 2
        sv1 = f"{cfg.sv1_listen.host}:{server.sv1_port}" if cfg.sv1_listen else "off"
        log.info(
            "stratum module running: chain %s, SV2 on %s:%d (authority public key %s), "
            "SV1 on %s, pools %s, extranonce space %d bytes, node template provider %s",
            cfg.chain,
            cfg.sv2_listen.host,
            server.port,
            keys.authority_public,
            sv1,
            ", ".join(u.name for u in upstreams),
            space,
            cfg.node_tp,
        )
        if jd is not None:
            log.info("Job Declaration Server on %s:%d", cfg.jds_listen.host, jd[0].port)
        notifier.ready(f"SV2 on port {server.port}, SV1 {sv1}; waiting for work")
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATUS_EVERY)
            line = _status_line(server, failover, link)
            log.info("status: %s", line)
            notifier.status(line)
        log.info("shutting down")
    finally:
        notifier.stopping()
        await server.close()
        if jd is not None:
            await jd[0].close()
        await failover.close()
        await link.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def _status_line(server: Sv2Server | WorkerPool, failover: FailoverSource, link: NodeLink) -> str:
    s: dict[str, Any] = server.status()
    f = failover.status()
    parts = [f"active {f['active']}", f"switches {f['switches']}"]
    parts += [f"{k} {v}" for k, v in s.items() if isinstance(v, int | float | str)]
    parts.append(f"node link {'up' if link.connected.is_set() else 'down'}")
    return ", ".join(parts)


def _run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 2
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    return asyncio.run(run_stratum(cfg, state_dir))


def _check(args: argparse.Namespace) -> int:
    path = args.check_config or args.config
    try:
        cfg = load_stratum_config(path)
    except ConfigError as exc:
        if args.json:
            emit({"ok": False, "config": path, "errors": exc.problems}, True)
        else:
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
        return 2
    result = {"ok": True, "config": path, **cfg.to_dict()}
    emit(result, args.json)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stratum",
        help="run the Stratum V2 module (SV2 + SV1 listeners, pool failover, solo)",
        description=(
            "Run the Stratum V2 module in the foreground, configured by the "
            "[modules.stratum-v2] table of the TOML file: miners connect over SV2 or SV1; work "
            "comes from the pools in priority order, solo on the node as the last resort. "
            "'blvm stratum check' validates the file without running."
        ),
    )
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help=f"TOML file ({DEFAULT_CONFIG})"
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the module keeps its SV2 keys (default $BLVM_DATADIR/stratum-v2 or "
        "~/.local/share/blvm/stratum-v2)",
    )
    p.set_defaults(func=_run)
    sub = p.add_subparsers(dest="stratum_command", metavar="SUBCOMMAND")
    c = sub.add_parser(
        "check",
        help="validate the config and print the resolved settings",
        description="Validate [modules.stratum-v2]; errors name the file, key and line.",
    )
    c.add_argument("--config", dest="check_config", metavar="FILE", help="TOML file to check")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=_check)
