"""Our SV2 client and template provider against SRI servers (`pool_sv2`, `jd_client_sv2`).

Topology: Template Provider <- SRI role <- in-test miner (our Noise initiator + Mining
messages). The template provider is either the node's REAL one (`node.mining.
template_provider` over a regtest chainstate + mempool holding transactions) or, for the
pool's codec check, a one-template responder written here. The JD client runs in SOLOMINING
mode, so it needs nothing but the template provider. The miner checks the role's
certificate with the SRI example authority key, opens a standard channel, mines the job in
Python and submits a share; the role must accept it, and because regtest difficulty makes
it a block too, forward a SubmitSolution to the template provider. With the real TP the
block must then be connected by our chainstate, mempool transactions included, and the SRI
role pins the TP's persisted authority key (`public_key` in its `Sv2Tp` table)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST, block_subsidy
from node.mempool import Mempool
from node.mining.template_provider import TemplateProvider, TemplateProviderConfig
from node.mining.tp_keys import load_or_create_keys
from protocols.bitcoin.tx import Tx
from protocols.sv2 import keys, secp
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    CoinbaseOutputConstraints,
    MiningClientFlags,
    NewMiningJob,
    NewTemplate,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    Protocol,
    SetNewPrevHash,
    SetTarget,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesStandard,
    SubmitSharesSuccess,
    SubmitSolution,
    TemplateSetNewPrevHash,
)
from protocols.sv2.noise import Certificate
from tests.conftest import require_interop
from tests.unit.mempool.mempool_tools import FakeClock, regtest_chain, spend

pytestmark = pytest.mark.interop

CACHE = Path(os.environ.get("BLVM_CACHE", Path.home() / ".cache" / "blvm"))
BIN = CACHE / "sri" / "bin"
SRI_SECRET = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"
SRI_PUBLIC = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
NBITS = 0x207FFFFF  # regtest
NETWORK_TARGET = 0x7FFFFF << (8 * (0x20 - 3))


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(conn: Sv2Connection, sock: socket.socket):
    """Yield events from one socket, answering handshake bytes as they are produced."""
    while True:
        while (event := conn.next_event()) is not None:
            yield event
        data = sock.recv(65536)
        if not data:
            return
        reply = conn.receive_data(data)
        if reply:
            sock.sendall(reply)


class OneTemplateResponder(threading.Thread):
    """Serves one template to whoever connects, records everything it receives."""

    def __init__(
        self, listener: socket.socket, template: NewTemplate, prev: TemplateSetNewPrevHash
    ):
        super().__init__(daemon=True)
        self.listener = listener
        self.template = template
        self.prev = prev
        self.received: queue.Queue = queue.Queue()
        rng = os.urandom
        authority, static = rng(32), rng(32)
        now = int(time.time())
        cert = Certificate.issue(authority, secp.xonly_from_secret(static), now - 5, now + 3600)
        self.conn = Sv2Connection.responder(static, cert)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            sock, _ = self.listener.accept()
            sock.settimeout(120)
            for event in _pump(self.conn, sock):
                self.received.put(event)
                if isinstance(event, SetupConnection):
                    sock.sendall(self.conn.send(SetupConnectionSuccess(2, 0)))
                elif isinstance(event, CoinbaseOutputConstraints):
                    sock.sendall(self.conn.send(self.template) + self.conn.send(self.prev))
        except BaseException as exc:  # reported by the test
            self.error = exc


def _template() -> tuple[NewTemplate, TemplateSetNewPrevHash]:
    commitment = _sha256d(bytes(64))  # witness root of a coinbase-only block, zero nonce
    outputs = (0).to_bytes(8, "little") + bytes([38]) + bytes.fromhex("6a24aa21a9ed") + commitment
    template = NewTemplate(
        template_id=1,
        future_template=True,
        version=0x20000000,
        coinbase_tx_version=2,
        coinbase_prefix=bytes.fromhex("02c800"),  # BIP34 height 200
        coinbase_tx_input_sequence=0xFFFFFFFF,
        coinbase_tx_value_remaining=5_000_000_000,
        coinbase_tx_outputs_count=1,
        coinbase_tx_outputs=outputs,
        coinbase_tx_locktime=0,
        merkle_path=(),
    )
    prev = TemplateSetNewPrevHash(
        template_id=1,
        prev_hash=os.urandom(32),
        header_timestamp=int(time.time()),
        n_bits=NBITS,
        target=NETWORK_TARGET.to_bytes(32, "little"),
    )
    return template, prev


def _wait_for(q: queue.Queue, kind: type, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = q.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__} within {timeout}s")


def _tp_table(tp_port: int, tp_key: str | None) -> str:
    key = f'public_key = "{tp_key}"\n' if tp_key else ""
    return f'[template_provider_type.Sv2Tp]\naddress = "127.0.0.1:{tp_port}"\n{key}'


def _pool_config(port: int, tp_port: int, payout: str, tp_key: str | None = None) -> str:
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


def _jdc_config(port: int, tp_port: int, payout: str, tp_key: str | None = None) -> str:
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


class NodeTemplateProvider(threading.Thread):
    """The node's real TemplateProvider on its own event loop, over a regtest chainstate.

    The chain has mature coinbases and the mempool two signed spends, so the template the
    SRI role mines carries transactions (merkle path, witness commitment, fees).
    """

    def __init__(self, datadir: Path, n_blocks: int = 110, n_txs: int = 2) -> None:
        super().__init__(daemon=True)
        blocks, coins = regtest_chain(n_blocks, seed=b"sv2-interop-tp") if n_blocks else ([], [])
        self.chain = Chainstate.open(datadir / "node", REGTEST, script_threads=1)
        for raw in blocks:
            assert self.chain.process_block(raw).status is BlockStatus.ACCEPTED
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


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.05)


class Miner:
    """Our SV2 miner on one standard channel of an SRI role (sans-IO connection, a socket)."""

    def __init__(self, pool_port: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", pool_port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(60)
        self.conn = Sv2Connection.initiator(
            keys.decode_authority_public_key(SRI_PUBLIC), now=int(time.time())
        )
        self.sock.sendall(self.conn.initiate())
        self.events = _pump(self.conn, self.sock)
        assert isinstance(next(self.events), HandshakeComplete)
        setup_mining = SetupConnection(
            protocol=Protocol.MINING,
            min_version=2,
            max_version=2,
            flags=MiningClientFlags.REQUIRES_STANDARD_JOBS,
            endpoint_host="127.0.0.1",
            endpoint_port=pool_port,
            vendor="blvm",
            hardware_version="interop",
            firmware="0",
            device_id="test",
        )
        self.sock.sendall(self.conn.send(setup_mining))
        assert isinstance(next(self.events), SetupConnectionSuccess)
        self.sock.sendall(
            self.conn.send(OpenStandardMiningChannel(1, "blvm.worker", 1000.0, b"\xff" * 32))
        )
        self.target = self.channel_id = self.job = self.prev_hash = None
        for event in self.events:
            self._track(event)
            job, prev = self.job, self.prev_hash
            if None not in (self.channel_id, job, prev, self.target) and (
                job.min_ntime is not None or job.job_id == prev.job_id
            ):
                break
        assert self.prev_hash.nbits == NBITS

    def _track(self, event) -> None:
        if isinstance(event, OpenStandardMiningChannelSuccess):
            self.channel_id = event.channel_id
            self.target = int.from_bytes(event.target, "little")
        elif isinstance(event, SetTarget):
            self.target = int.from_bytes(event.maximum_target, "little")
        elif isinstance(event, NewMiningJob):
            self.job = event
        elif isinstance(event, SetNewPrevHash):
            self.prev_hash = event

    def wait_for_new_job(self, timeout: float = 30) -> None:
        """Until a non-future job other than the current one arrives (a template update)."""
        old = self.job.job_id
        deadline = time.monotonic() + timeout
        for event in self.events:
            self._track(event)
            if self.job.job_id != old and self.job.min_ntime is not None:
                return
            assert time.monotonic() < deadline, "no new job from the role"
        raise AssertionError("role closed the connection")

    def mine_and_submit(self) -> tuple[int, int]:
        """Solve the current job at min(channel, network) target and submit it: (nonce, ntime)."""
        job, prev = self.job, self.prev_hash
        ntime = max(prev.min_ntime, job.min_ntime or 0)
        head = (
            job.version.to_bytes(4, "little")
            + prev.prev_hash
            + job.merkle_root
            + ntime.to_bytes(4, "little")
            + NBITS.to_bytes(4, "little")
        )
        # Meet the channel target and the (regtest, ~2^255) network target: share and block.
        goal = min(self.target, NETWORK_TARGET)
        for nonce in range(5_000_000):
            if int.from_bytes(_sha256d(head + nonce.to_bytes(4, "little")), "little") <= goal:
                break
        else:
            pytest.fail(f"no share found for target {self.target:064x}")
        submit = SubmitSharesStandard(self.channel_id, 1, job.job_id, nonce, ntime, job.version)
        self.sock.sendall(self.conn.send(submit))
        for event in self.events:
            assert not isinstance(event, SubmitSharesError), event
            if isinstance(event, SubmitSharesSuccess):
                assert event.new_submits_accepted_count == 1
                break
        return nonce, ntime

    def close(self) -> None:
        self.sock.close()


def _start_role(tmp_path: Path, role: str, config_text: str):
    binary = BIN / role
    if not binary.exists():
        require_interop(f"SRI {role} not built at {binary}; run scripts/install-sri.sh")
    config = tmp_path / f"{role}.toml"
    config.write_text(config_text)
    log_path = tmp_path / f"{role}.log"
    log = log_path.open("w")
    proc = subprocess.Popen([str(binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    return proc, log, log_path


def _payout() -> str:
    payout_key = secp.ellswift_decode(secp.ellswift_create(os.urandom(32), os.urandom(32)))
    return f"wpkh({payout_key.hex()})"


def test_sv2_sri_pool_accepts_our_client_and_template_codec(tmp_path: Path) -> None:
    """pool_sv2 against the one-template responder: our TD codec alone, byte for byte."""
    role = "pool_sv2"
    if not (BIN / role).exists():
        require_interop(f"SRI {role} not built at {BIN / role}; run scripts/install-sri.sh")
    tp_listener = socket.create_server(("127.0.0.1", 0))
    tp_listener.settimeout(60)
    template, prev = _template()
    tp = OneTemplateResponder(tp_listener, template, prev)
    tp.start()
    pool_port = _free_port()
    proc, log, log_path = _start_role(
        tmp_path, role, _pool_config(pool_port, tp_listener.getsockname()[1], _payout())
    )
    try:
        setup = _wait_for(tp.received, SetupConnection, 60)
        assert setup.protocol == Protocol.TEMPLATE_DISTRIBUTION
        _wait_for(tp.received, CoinbaseOutputConstraints, 30)
        miner = Miner(pool_port)
        job, prev_hash = miner.job, miner.prev_hash
        nonce, ntime = miner.mine_and_submit()
        miner.close()
        assert prev_hash.prev_hash == prev.prev_hash
        solution = _wait_for(tp.received, SubmitSolution, 30)
        assert (solution.template_id, solution.header_nonce) == (1, nonce)
        assert (solution.version, solution.header_timestamp) == (job.version, ntime)
        coinbase = Tx.from_bytes(solution.coinbase_tx)
        # Standard channel, coinbase-only template: the job's merkle root is the coinbase txid.
        assert coinbase.txid == job.merkle_root
        assert coinbase.version == template.coinbase_tx_version
        assert template.coinbase_tx_outputs in solution.coinbase_tx
        assert tp.error is None, tp.error
    except BaseException:
        log.flush()
        print(log_path.read_text()[-4000:])
        raise
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
        tp_listener.close()


@pytest.mark.parametrize(
    ("role", "make_config"), [("jd_client_sv2", _jdc_config), ("pool_sv2", _pool_config)]
)
def test_sv2_sri_role_mines_a_block_on_our_node_template_provider(
    tmp_path: Path, role: str, make_config
) -> None:
    """SRI role <- the node's real TP: a fee update becomes a new job; the block connects."""
    if not (BIN / role).exists():
        require_interop(f"SRI {role} not built at {BIN / role}; run scripts/install-sri.sh")
    node = NodeTemplateProvider(tmp_path)
    node.start()
    assert node.started.wait(30) and node.error is None, node.error
    tp = node.tp
    height = node.chain.height
    pool_port = _free_port()
    proc, log, log_path = _start_role(
        tmp_path,
        role,
        make_config(pool_port, tp.port, _payout(), tp.keys.authority_public_text),
    )
    try:
        # The role connects, pins our authority key, sets up and gets future work + prev hash.
        _wait_until(lambda: tp.stats.prev_hashes_sent >= 1, 60, "template sent to the role")
        miner = Miner(pool_port)
        # A better-paying transaction arrives: the TP re-sends a non-future template, and
        # the role turns it into a new job on our open channel.
        richer, _ = spend([node.coins[2]], 1, fee=10_000)
        assert node.mempool.accept(richer).accepted
        node.txs.append(richer)
        _wait_until(lambda: tp.stats.templates_sent >= 2, 30, "fee-update template")
        miner.wait_for_new_job()
        prev_hash = miner.prev_hash
        nonce, _ = miner.mine_and_submit()
        miner.close()
        assert prev_hash.prev_hash == node.chain.block_hash_at(height)
        _wait_until(lambda: node.chain.height == height + 1, 30, "block connected by the node")
        # The counter moves once process_block has returned, just after the tip did.
        _wait_until(lambda: tp.stats.solutions_accepted == 1, 10, "solution counted")
        assert tp.stats.solutions_rejected == 0
        block = node.chain.get_block(node.chain.tip.hash)
        assert block.header.nonce == nonce
        assert {tx.txid for tx in block.txs[1:]} == {tx.txid for tx in node.txs}
        assert len(node.mempool) == 0
        fees = 2_000 + 3_000 + 10_000
        paid = sum(o.value for o in block.txs[0].outputs)
        assert paid == block_subsidy(height + 1, REGTEST) + fees
        # The TP pushes the next tip's work to the role at once.
        _wait_until(lambda: tp.stats.prev_hashes_sent >= 2, 30, "new work after the block")
        assert node.error is None, node.error
    except BaseException:
        log.flush()
        print(log_path.read_text()[-4000:])
        raise
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
        node.close()


def test_sv2_sri_jdc_mines_height_one_on_a_fresh_node(tmp_path: Path) -> None:
    """`blvm up` starts at genesis: the BIP34 prefix of height 1 is the one-byte OP_1."""
    role = "jd_client_sv2"
    if not (BIN / role).exists():
        require_interop(f"SRI {role} not built at {BIN / role}; run scripts/install-sri.sh")
    node = NodeTemplateProvider(tmp_path, n_blocks=0, n_txs=0)
    node.start()
    assert node.started.wait(30) and node.error is None, node.error
    tp = node.tp
    pool_port = _free_port()
    config = _jdc_config(pool_port, tp.port, _payout(), tp.keys.authority_public_text)
    proc, log, log_path = _start_role(tmp_path, role, config)
    try:
        _wait_until(lambda: tp.stats.prev_hashes_sent >= 1, 60, "template sent to the role")
        miner = Miner(pool_port)
        nonce, _ = miner.mine_and_submit()
        miner.close()
        _wait_until(lambda: node.chain.height == 1, 30, "block 1 connected by the node")
        block = node.chain.get_block(node.chain.tip.hash)
        assert block.header.nonce == nonce and len(block.txs) == 1
        assert block.txs[0].inputs[0].script_sig[:1] == b"\x51"
    except BaseException:
        log.flush()
        print(log_path.read_text()[-4000:])
        raise
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
        node.close()
