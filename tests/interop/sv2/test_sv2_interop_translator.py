"""Our SV2 server side (Noise responder, extended channels) against SRI's `translator_sv2`.

Topology: in-test SV1 miner -> translator_sv2 -> in-test SV2 pool (our codec). The pool answers
the translator's OpenExtendedMiningChannel with a NewExtendedMiningJob; the SV1 miner gets it as
mining.notify, builds the header the SV1 way and submits a share; the translator forwards it as
SubmitSharesExtended. Rebuilding the header from that share with the SV2 rule (coinbase =
prefix || extranonce_prefix || extranonce || suffix) must give the miner's exact header, so SRI
and our code agree on every byte of the extended-job semantics.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from pathlib import Path

import pytest

from protocols.sv2 import keys, secp
from protocols.sv2.connection import Sv2Connection
from protocols.sv2.messages import (
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    RequestExtensions,
    RequestExtensionsSuccess,
    SetNewPrevHash,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesExtended,
    SubmitSharesSuccess,
)
from protocols.sv2.noise import Certificate
from tests.helpers.sri import (
    REGTEST_NBITS,
    free_port,
    grind,
    need_role,
    sha256d,
    sri_role,
    translator_config,
)
from tests.helpers.stratum_miners import Sv1Miner, sv1_prevhash_to_header, sv1_share_target

pytestmark = pytest.mark.interop

NBITS = REGTEST_NBITS
VERSION = 0x20000000
EXTRANONCE_PREFIX = bytes.fromhex("a1b2c3d4")


class Pool(threading.Thread):
    """Minimal SV2 pool: one extended channel, one job, acknowledges every share."""

    def __init__(self, listener: socket.socket, authority: bytes) -> None:
        super().__init__(daemon=True)
        self.listener = listener
        static = os.urandom(32)
        now = int(time.time())
        cert = Certificate.issue(authority, secp.xonly_from_secret(static), now - 5, now + 3600)
        self.conn = Sv2Connection.responder(static, cert)
        self.events: queue.Queue = queue.Queue()
        self.prev_hash = os.urandom(32)
        self.ntime = now
        self.job: NewExtendedMiningJob | None = None
        self.error: BaseException | None = None

    def _job(self, channel_id: int, extranonce_size: int) -> NewExtendedMiningJob:
        script_sig = bytes.fromhex("03c80000")  # BIP34 height push (200)
        script_len = len(script_sig) + len(EXTRANONCE_PREFIX) + extranonce_size
        prefix = (
            (2).to_bytes(4, "little")
            + b"\x01"
            + bytes(32)
            + b"\xff\xff\xff\xff"
            + bytes([script_len])
            + script_sig
        )
        payout = bytes.fromhex("0014") + os.urandom(20)
        suffix = (
            b"\xff\xff\xff\xff"
            + b"\x01"
            + (5_000_000_000).to_bytes(8, "little")
            + bytes([len(payout)])
            + payout
            + bytes(4)
        )
        return NewExtendedMiningJob(channel_id, 1, None, VERSION, True, (), prefix, suffix)

    def run(self) -> None:
        try:
            sock, _ = self.listener.accept()
            sock.settimeout(120)
            while True:
                while (event := self.conn.next_event()) is not None:
                    self.events.put(event)
                    self._handle(sock, event)
                data = sock.recv(65536)
                if not data:
                    return
                reply = self.conn.receive_data(data)
                if reply:
                    sock.sendall(reply)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _handle(self, sock: socket.socket, event: object) -> None:
        send = self.conn.send
        if isinstance(event, SetupConnection):
            sock.sendall(send(SetupConnectionSuccess(2, 0)))
        elif isinstance(event, RequestExtensions):
            sock.sendall(send(RequestExtensionsSuccess(event.request_id, ())))
        elif isinstance(event, OpenExtendedMiningChannel):
            size = max(event.min_extranonce_size, 8)
            self.job = self._job(1, size)
            sock.sendall(
                send(
                    OpenExtendedMiningChannelSuccess(
                        event.request_id, 1, b"\xff" * 32, size, EXTRANONCE_PREFIX, 0
                    )
                )
                + send(self.job)
                + send(SetNewPrevHash(1, self.job.job_id, self.prev_hash, self.ntime, NBITS))
            )
        elif isinstance(event, SubmitSharesExtended):
            sock.sendall(send(SubmitSharesSuccess(event.channel_id, event.sequence_number, 1, 1)))


def test_sv2_translator_extended_channel_roundtrip(tmp_path: Path) -> None:
    need_role("translator_sv2")
    authority = os.urandom(32)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)
    pool = Pool(listener, authority)
    pool.start()
    sv1_port = free_port()
    config = translator_config(
        sv1_port,
        listener.getsockname()[1],
        keys.encode_authority_public_key(secp.xonly_from_secret(authority)),
    )
    try:
        with sri_role(tmp_path, "translator_sv2", config):
            miner = Sv1Miner(sv1_port)
            notes: list[dict] = []
            extranonce1, extranonce2_size, difficulty, notify = miner.first_job(notes)
            job_id, prevhash, coinb1, coinb2, branches, version, nbits, ntime = notify[:8]
            assert sv1_prevhash_to_header(prevhash) == pool.prev_hash
            assert int(nbits, 16) == NBITS and int(version, 16) == VERSION
            assert branches == []
            extranonce2 = bytes(extranonce2_size)
            coinbase = bytes.fromhex(coinb1) + extranonce1 + extranonce2 + bytes.fromhex(coinb2)
            head = (
                int(version, 16).to_bytes(4, "little")
                + pool.prev_hash
                + sha256d(coinbase)
                + int(ntime, 16).to_bytes(4, "little")
                + NBITS.to_bytes(4, "little")
            )
            target = sv1_share_target(difficulty)
            nonce = grind(head, target)
            if nonce is None:
                pytest.fail(f"no SV1 share for difficulty {difficulty}")
            miner_header = head + nonce.to_bytes(4, "little")
            accepted = miner.submit(job_id, extranonce2, ntime, nonce, notes)
            assert accepted is True

            deadline = time.monotonic() + 30
            share = None
            while share is None and time.monotonic() < deadline:
                event = pool.events.get(timeout=max(0.1, deadline - time.monotonic()))
                if isinstance(event, SubmitSharesExtended):
                    share = event
            assert share is not None, "translator did not forward the share"
            job = pool.job
            assert job is not None and share.job_id == job.job_id
            rebuilt_coinbase = (
                job.coinbase_tx_prefix
                + EXTRANONCE_PREFIX
                + share.extranonce
                + job.coinbase_tx_suffix
            )
            assert rebuilt_coinbase == coinbase
            rebuilt = (
                share.version.to_bytes(4, "little")
                + pool.prev_hash
                + sha256d(rebuilt_coinbase)
                + share.ntime.to_bytes(4, "little")
                + NBITS.to_bytes(4, "little")
                + share.nonce.to_bytes(4, "little")
            )
            assert rebuilt == miner_header
            assert pool.error is None, pool.error
            miner.sock.close()
    finally:
        listener.close()


def test_sv2_translator_rejects_certificate_from_other_authority(tmp_path: Path) -> None:
    """Negative control: with a different authority key configured, SRI must refuse our pool,
    so the positive test really exercised certificate verification."""
    need_role("translator_sv2")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)
    pool = Pool(listener, os.urandom(32))
    pool.start()
    wrong = keys.encode_authority_public_key(secp.xonly_from_secret(os.urandom(32)))
    config = translator_config(free_port(), listener.getsockname()[1], wrong)
    try:
        with sri_role(tmp_path, "translator_sv2", config):
            pool.join(timeout=20)  # the translator hangs up after act 2
            assert not pool.is_alive(), "translator kept the connection open"
            received = []
            while not pool.events.empty():
                received.append(pool.events.get())
            assert not any(isinstance(e, SetupConnection) for e in received), received
    finally:
        listener.close()


def test_sv2_translator_mines_a_block_through_our_server(tmp_path: Path) -> None:
    """SV1 miner -> translator_sv2 -> our SV2 server (appliance.stratum_v2) over a regtest node.

    The translator opens an extended channel on our server (pinning our persisted authority
    key); the SV1 miner mines the job our server derived from the node's template; the share
    comes back as SubmitSharesExtended, passes our validation and, on regtest, is a block that
    the Chainstate connects.
    """
    need_role("translator_sv2")
    import asyncio

    from appliance.stratum_v2.keys import load_or_create_keys
    from appliance.stratum_v2.server import Sv2Server, Sv2ServerConfig
    from appliance.stratum_v2.source import NodeTemplateSource
    from node.chain.chainstate import Chainstate
    from node.chain.params import REGTEST

    chain = Chainstate.open(tmp_path / "chain", REGTEST, script_threads=1)
    source = NodeTemplateSource(chain, bytes.fromhex("51"))
    server_keys = load_or_create_keys(tmp_path / "keys", now=int(time.time()))
    loop = asyncio.new_event_loop()
    server = Sv2Server(
        source,
        server_keys.static_secret,
        server_keys.certificate,
        Sv2ServerConfig(host="127.0.0.1", port=0, ack_batch=1),
    )
    loop.run_until_complete(server.start())
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    sv1_port = free_port()
    config = translator_config(sv1_port, server.port, server_keys.authority_public)
    try:
        with sri_role(tmp_path, "translator_sv2", config):
            miner = Sv1Miner(sv1_port)
            notes: list[dict] = []
            extranonce1, extranonce2_size, difficulty, notify = miner.first_job(notes)
            job_id, prevhash, coinb1, coinb2, branches, version, nbits, ntime = notify[:8]
            assert sv1_prevhash_to_header(prevhash) == chain.tip.hash
            work = server.work
            assert work is not None and int(nbits, 16) == work.nbits
            extranonce2 = bytes(extranonce2_size)
            coinbase = bytes.fromhex(coinb1) + extranonce1 + extranonce2 + bytes.fromhex(coinb2)
            root = sha256d(coinbase)
            for branch in branches:
                root = sha256d(root + bytes.fromhex(branch))
            head = (
                int(version, 16).to_bytes(4, "little")
                + chain.tip.hash
                + root
                + int(ntime, 16).to_bytes(4, "little")
                + int(nbits, 16).to_bytes(4, "little")
            )
            target = min(sv1_share_target(difficulty), 1 << 254)
            nonce = grind(head, target)
            if nonce is None:
                pytest.fail(f"no SV1 share for difficulty {difficulty}")
            accepted = miner.submit(job_id, extranonce2, ntime, nonce, notes)
            assert accepted is True
            deadline = time.monotonic() + 30
            # The tip moves inside submit_block's thread; the server counts the result once
            # its event loop resumes after that thread: wait for both.
            while (
                chain.tip.height < 1 or not server.counters.block_results
            ) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert chain.tip.height == 1, server.status()
            assert server.counters.shares_accepted >= 1 and server.counters.blocks_accepted == 1
            miner.sock.close()
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
        source.close()
        chain.close()
