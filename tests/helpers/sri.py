"""Shared rigs for the Stratum tests: SRI roles (the Stratum V2 reference binaries) started
from a generated TOML config, the node's real template provider on its own thread, our
failover proxy in front of upstreams, and the waits and ports all of them need.

The SRI binaries are built by `scripts/install-sri.sh` into `$BLVM_CACHE/sri/bin`; a missing
one skips the test through `require_interop` (a missing real peer, not a failure)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.stratum_v2.keys import ServerKeys
from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
from appliance.stratum_v2.upstream.failover import FailoverSource, HealthPolicy
from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mempool import Mempool
from node.mining.template_provider import TemplateProvider, TemplateProviderConfig
from node.mining.tp_keys import load_or_create_keys
from node.mining.workload import Coin
from protocols.sv2 import keys as sv2keys
from protocols.sv2 import secp
from protocols.sv2.messages import SetupConnectionSuccess
from tests.conftest import require_interop
from tests.integration.stratum_v2.sv2srv_client import ChannelView, Sv2TestClient
from tests.unit.mempool.mempool_tools import FakeClock, block_on, regtest_chain, spend

CACHE = Path(os.environ.get("BLVM_CACHE", Path.home() / ".cache" / "blvm"))
BIN = CACHE / "sri" / "bin"
# The SRI example authority key pair (their sample configs): our clients pin SRI_PUBLIC.
SRI_SECRET = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"
SRI_PUBLIC = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
REGTEST_NBITS = 0x207FFFFF
REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def grind(head: bytes, target: float, tries: int = 5_000_000) -> int | None:
    """The first nonce whose header hash (76-byte `head` + nonce) meets `target`, if any."""
    for nonce in range(tries):
        if int.from_bytes(sha256d(head + nonce.to_bytes(4, "little")), "little") <= target:
            return nonce
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_retrying(port: int, timeout: float = 30) -> socket.socket:
    """A TCP connection to a role that may still be starting up (refused -> retry)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        else:
            sock.settimeout(60)
            return sock


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.05)


async def until(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """`wait_until` for code on an event loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        await asyncio.sleep(0.02)


# SRI roles ---------------------------------------------------------------------------------


def need_role(role: str) -> Path:
    binary = BIN / role
    if not binary.exists():
        require_interop(f"SRI {role} not built at {binary}; run scripts/install-sri.sh")
    return binary


@contextlib.contextmanager
def sri_role(tmp_path: Path, role: str, config_text: str) -> Iterator[Path]:
    """Run one SRI role on `config_text`; yields its log path, prints the log's tail when the
    body fails, and kills the role on the way out."""
    binary = need_role(role)
    config = tmp_path / f"{role}.toml"
    config.write_text(config_text)
    log_path = tmp_path / f"{role}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield log_path
        except BaseException:
            log.flush()
            print(log_path.read_text()[-4000:])
            raise
        finally:
            proc.kill()
            proc.wait(timeout=10)


def payout() -> str:
    """A fresh P2WPKH payout descriptor for a role's coinbase."""
    payout_key = secp.ellswift_decode(secp.ellswift_create(os.urandom(32), os.urandom(32)))
    return f"wpkh({payout_key.hex()})"


def _tp_table(tp_port: int, tp_key: str | None) -> str:
    key = f'public_key = "{tp_key}"\n' if tp_key else ""
    return f'[template_provider_type.Sv2Tp]\naddress = "127.0.0.1:{tp_port}"\n{key}'


def pool_config(port: int, tp_port: int, payout: str, tp_key: str | None = None) -> str:
    return (
        f'authority_public_key = "{SRI_PUBLIC}"\n'
        f'authority_secret_key = "{SRI_SECRET}"\n'
        "cert_validity_sec = 3600\n"
        f'listen_address = "127.0.0.1:{port}"\n'
        f'coinbase_reward_script = "{payout}"\n'
        "server_id = 1\n"
        'pool_signature = "blvm interop"\n'
        "shares_per_minute = 6.0\n"
        "share_batch_size = 1\n" + _tp_table(tp_port, tp_key)
    )


def jdc_config(port: int, tp_port: int, payout: str, tp_key: str | None = None) -> str:
    return (
        'mode = "SOLOMINING"\n'
        "upstreams = []\n"
        f'listening_address = "127.0.0.1:{port}"\n'
        "max_supported_version = 2\n"
        "min_supported_version = 2\n"
        f'authority_public_key = "{SRI_PUBLIC}"\n'
        f'authority_secret_key = "{SRI_SECRET}"\n'
        "cert_validity_sec = 3600\n"
        f'coinbase_reward_script = "{payout}"\n'
        'jdc_signature = "blvm interop"\n'
        "shares_per_minute = 6.0\n"
        "share_batch_size = 1\n" + _tp_table(tp_port, tp_key)
    )


def translator_config(
    sv1_port: int, upstream_port: int, authority_pubkey: str, extranonce2_size: int = 4
) -> str:
    """translator_sv2: SV1 miners on `sv1_port`, one SV2 upstream pinned to `authority_pubkey`."""
    return (
        'downstream_address = "127.0.0.1"\n'
        f"downstream_port = {sv1_port}\n"
        "max_supported_version = 2\n"
        "min_supported_version = 2\n"
        f"downstream_extranonce2_size = {extranonce2_size}\n"
        "aggregate_channels = false\n"
        "[downstream_difficulty_config]\n"
        "min_individual_miner_hashrate = 10.0\n"
        "shares_per_minute = 6.0\n"
        "enable_vardiff = false\n"
        "job_keepalive_interval_secs = 60\n"
        "[[upstreams]]\n"
        'address = "127.0.0.1"\n'
        f"port = {upstream_port}\n"
        f'authority_pubkey = "{authority_pubkey}"\n'
        'user_identity = "blvm-interop"\n'
    )


# the node's template provider --------------------------------------------------------------

#: Above this many mempool spends the node fans one coinbase out (fewer coinbases mature).
FAN_OUT_ABOVE = 8


class NodeTemplateProvider(threading.Thread):
    """The node's real TemplateProvider on its own event loop, over a regtest chainstate.

    The chain has mature coinbases and the mempool `n_txs` signed spends, so the template the
    SRI role mines carries transactions (merkle path, witness commitment, fees). More spends
    than mature coinbases come from one coinbase fanned out in a block of its own (the
    benchmark's mainnet-deep template).
    """

    def __init__(self, datadir: Path, n_blocks: int = 110, n_txs: int = 2) -> None:
        super().__init__(daemon=True)
        blocks, coins = regtest_chain(n_blocks, seed=b"sv2-interop-tp") if n_blocks else ([], [])
        self.chain = Chainstate.open(datadir / "node", REGTEST, script_threads=1)
        for raw in blocks:
            assert self.chain.process_block(raw).status is BlockStatus.ACCEPTED
        if n_txs > FAN_OUT_ABOVE:
            coins = self._fan_out(coins[0], n_txs)
        clock = FakeClock()
        self.mempool = Mempool(self.chain, clock=clock)
        self.coins = coins
        self.txs = []
        for n, coin in enumerate(coins[:n_txs]):
            tx, _ = spend([coin], 1, fee=2_000 + 1_000 * n)
            assert self.mempool.accept(tx).accepted
            self.txs.append(tx)
        keys = load_or_create_keys(datadir / "node")
        self.tp = TemplateProvider(
            self.chain, self.mempool, keys, TemplateProviderConfig(fee_interval=0.2)
        )
        self.started = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._quit: asyncio.Event | None = None

    def _fan_out(self, coin: Coin, n: int) -> list[Coin]:
        """`n` confirmed coins: `coin` split into `n` outputs by a transaction in a new block."""
        fee = 100_000
        tx, outputs = spend([coin], n, fee=fee)
        tip = self.chain.tip
        block = block_on(tip.hash, tip.height + 1, tip.time + 1, [tx], fees=fee)
        assert self.chain.process_block(block.serialize()).status is BlockStatus.ACCEPTED
        return outputs

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._quit = asyncio.Event()
        await self.tp.start()
        self.started.set()
        try:
            await self._quit.wait()
        finally:
            await self.tp.stop()

    def close(self) -> None:
        if self._loop is not None and self._quit is not None and self.is_alive():
            self._loop.call_soon_threadsafe(self._quit.set)
        self.join(timeout=15)
        self.mempool.close()
        self.chain.close()


@contextlib.contextmanager
def node_template_provider(datadir: Path, **kwargs: int) -> Iterator[NodeTemplateProvider]:
    """A started `NodeTemplateProvider`, closed on the way out."""
    node = NodeTemplateProvider(datadir, **kwargs)
    node.start()
    try:
        assert node.started.wait(30) and node.error is None, node.error
        yield node
    finally:
        node.close()


# our failover proxy ------------------------------------------------------------------------


@dataclass(slots=True)
class ProxyRig:
    """Our failover proxy and, once `open_miner` ran, the test miner connected to it."""

    failover: FailoverSource
    proxy: Sv2Server
    proxy_keys: ServerKeys
    client: Sv2TestClient | None = None

    async def open_miner(self, user: str, min_size: int = 4) -> ChannelView:
        """Start the proxy, connect a miner pinning its key, open one extended channel."""
        await self.proxy.start()
        authority = sv2keys.decode_authority_public_key(self.proxy_keys.authority_public)
        self.client = await Sv2TestClient.connect(self.proxy.port, authority)
        assert isinstance(await self.client.setup(), SetupConnectionSuccess)
        return await self.client.open_extended(user, min_size=min_size)


@contextlib.asynccontextmanager
async def failover_proxy(
    upstreams: Sequence[object], space: int, policy: HealthPolicy, proxy_keys: ServerKeys
) -> AsyncIterator[ProxyRig]:
    """Our downstream SV2 server fed by a running `FailoverSource` over `upstreams`.

    The proxy is created but not started (`ProxyRig.open_miner` starts it once the test has
    upstream work); miner, failover and proxy are closed on the way out."""
    failover = FailoverSource(list(upstreams), space, policy)
    proxy = Sv2Server(
        failover,
        proxy_keys.static_secret,
        proxy_keys.certificate,
        Sv2ServerConfig(host="127.0.0.1", port=0, ack_interval=0.05),
        share_sink=failover.share_sink,
    )
    driver = asyncio.create_task(failover.run())
    rig = ProxyRig(failover, proxy, proxy_keys)
    try:
        yield rig
    finally:
        if rig.client is not None:
            rig.client.close()
        await failover.close()
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)
        await proxy.close()
