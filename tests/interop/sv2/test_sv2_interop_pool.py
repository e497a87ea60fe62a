"""Our SV2 client and template provider codec against SRI servers (`pool_sv2`, `jd_client_sv2`).

Topology: in-test Template Provider (our Noise responder + TD messages) <- SRI role <- in-test
miner (our Noise initiator + Mining messages). The JD client runs in SOLOMINING mode, so it
needs nothing but our template provider. The miner checks the pool's certificate with the
SRI example authority key, opens a standard channel, mines the pool's job in Python and submits
a share; the role must accept it, and because regtest difficulty makes it a block too, forward
a SubmitSolution to our template provider. That exercises NewTemplate/SetNewPrevHash/
CoinbaseOutputConstraints/SubmitSolution and the whole Mining channel flow against SRI's codec.
"""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

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


class TemplateProvider(threading.Thread):
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


def _pool_config(port: int, tp_port: int, payout: str) -> str:
    return (
        f'authority_public_key = "{SRI_PUBLIC}"\n'
        f'authority_secret_key = "{SRI_SECRET}"\n'
        "cert_validity_sec = 3600\n"
        f'listen_address = "127.0.0.1:{port}"\n'
        f'coinbase_reward_script = "{payout}"\n'
        "server_id = 1\n"
        'pool_signature = "blvm interop"\n'
        "shares_per_minute = 6.0\n"
        "share_batch_size = 1\n"
        "[template_provider_type.Sv2Tp]\n"
        f'address = "127.0.0.1:{tp_port}"\n'
    )


def _jdc_config(port: int, tp_port: int, payout: str) -> str:
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
        "share_batch_size = 1\n"
        "[template_provider_type.Sv2Tp]\n"
        f'address = "127.0.0.1:{tp_port}"\n'
    )


@pytest.mark.parametrize(
    ("role", "make_config"), [("pool_sv2", _pool_config), ("jd_client_sv2", _jdc_config)]
)
def test_sv2_sri_server_accepts_our_client_and_template_provider(
    tmp_path: Path, role: str, make_config
) -> None:
    binary = BIN / role
    if not binary.exists():
        require_interop(f"SRI {role} not built at {binary}; run scripts/install-sri.sh")
    tp_listener = socket.create_server(("127.0.0.1", 0))
    tp_listener.settimeout(60)
    template, prev = _template()
    tp = TemplateProvider(tp_listener, template, prev)
    tp.start()
    pool_port = _free_port()
    payout_key = secp.ellswift_decode(secp.ellswift_create(os.urandom(32), os.urandom(32)))
    config = tmp_path / f"{role}.toml"
    config.write_text(
        make_config(pool_port, tp_listener.getsockname()[1], f"wpkh({payout_key.hex()})")
    )
    log_path = tmp_path / f"{role}.log"
    log = log_path.open("w")
    proc = subprocess.Popen([str(binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        setup = _wait_for(tp.received, SetupConnection, 60)
        assert setup.protocol == Protocol.TEMPLATE_DISTRIBUTION
        _wait_for(tp.received, CoinbaseOutputConstraints, 30)

        # Our miner connects once the pool listens.
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", pool_port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        sock.settimeout(60)
        conn = Sv2Connection.initiator(
            keys.decode_authority_public_key(SRI_PUBLIC), now=int(time.time())
        )
        sock.sendall(conn.initiate())
        events = _pump(conn, sock)
        assert isinstance(next(events), HandshakeComplete)
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
        sock.sendall(conn.send(setup_mining))
        assert isinstance(next(events), SetupConnectionSuccess)
        sock.sendall(conn.send(OpenStandardMiningChannel(1, "blvm.worker", 1000.0, b"\xff" * 32)))

        target = channel_id = job = prev_hash = None
        for event in events:
            if isinstance(event, OpenStandardMiningChannelSuccess):
                channel_id, target = event.channel_id, int.from_bytes(event.target, "little")
            elif isinstance(event, SetTarget):
                target = int.from_bytes(event.maximum_target, "little")
            elif isinstance(event, NewMiningJob):
                job = event
            elif isinstance(event, SetNewPrevHash):
                prev_hash = event
            if None not in (channel_id, job, prev_hash, target) and (
                job.min_ntime is not None or job.job_id == prev_hash.job_id
            ):
                break
        assert prev_hash.prev_hash == prev.prev_hash and prev_hash.nbits == NBITS

        ntime = max(prev_hash.min_ntime, job.min_ntime or 0)
        head = (
            job.version.to_bytes(4, "little")
            + prev_hash.prev_hash
            + job.merkle_root
            + ntime.to_bytes(4, "little")
            + NBITS.to_bytes(4, "little")
        )
        # Meet the channel target and the (regtest, ~2^255) network target: a share and a block.
        goal = min(target, NETWORK_TARGET)
        for nonce in range(5_000_000):
            if int.from_bytes(_sha256d(head + nonce.to_bytes(4, "little")), "little") <= goal:
                break
        else:
            pytest.fail(f"no share found for target {target:064x}")
        sock.sendall(
            conn.send(SubmitSharesStandard(channel_id, 1, job.job_id, nonce, ntime, job.version))
        )
        for event in events:
            assert not isinstance(event, SubmitSharesError), event
            if isinstance(event, SubmitSharesSuccess):
                assert event.new_submits_accepted_count == 1
                break
        solution = _wait_for(tp.received, SubmitSolution, 30)
        assert (solution.template_id, solution.header_nonce) == (1, nonce)
        assert (solution.version, solution.header_timestamp) == (job.version, ntime)
        coinbase = Tx.from_bytes(solution.coinbase_tx)
        # Standard channel, coinbase-only template: the job's merkle root is the coinbase txid.
        assert coinbase.txid == job.merkle_root
        assert coinbase.version == template.coinbase_tx_version
        assert template.coinbase_tx_outputs in solution.coinbase_tx
        sock.close()
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
