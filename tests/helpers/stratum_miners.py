"""Blocking test miners for the interop tests: just enough SV1, or SV2 on one standard
channel, to take a job from a real role, solve it in Python and submit the share."""

from __future__ import annotations

import json
import socket
import time

import pytest

from protocols.sv2 import keys
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    MiningClientFlags,
    NewMiningJob,
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
)
from tests.helpers.sri import REGTEST_NBITS, REGTEST_TARGET, SRI_PUBLIC, connect_retrying, grind


def pump(conn: Sv2Connection, sock: socket.socket):
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


class Sv1Miner:
    """Just enough Stratum V1 to subscribe, authorize, take a job and submit a share."""

    def __init__(self, port: int) -> None:
        self.sock = connect_retrying(port)
        self.buf = b""
        self.next_id = 1

    def call(self, method: str, params: list) -> int:
        msg_id = self.next_id
        self.next_id += 1
        line = json.dumps({"id": msg_id, "method": method, "params": params}) + "\n"
        self.sock.sendall(line.encode())
        return msg_id

    def read(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("translator closed the SV1 connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def wait_result(self, msg_id: int, notes: list[dict]) -> object:
        while True:
            msg = self.read()
            if msg.get("id") == msg_id and "method" not in msg:
                assert not msg.get("error"), msg
                return msg["result"]
            notes.append(msg)

    def first_job(self, notes: list[dict]) -> tuple[bytes, int, float | None, list]:
        """Subscribe and authorize, then the first mining.notify: (extranonce1,
        extranonce2_size, difficulty in force or None, notify params)."""
        sub = self.wait_result(self.call("mining.subscribe", ["blvm-test/1.0"]), notes)
        extranonce1, extranonce2_size = bytes.fromhex(sub[1]), sub[2]
        assert self.wait_result(self.call("mining.authorize", ["blvm.w1", "x"]), notes)
        difficulty, notify = None, None
        while notify is None:
            msg = notes.pop(0) if notes else self.read()
            if msg.get("method") == "mining.set_difficulty":
                difficulty = msg["params"][0]
            elif msg.get("method") == "mining.notify":
                notify = msg["params"]
        return extranonce1, extranonce2_size, difficulty, notify

    def submit(
        self, job_id: str, extranonce2: bytes, ntime: str, nonce: int, notes: list[dict]
    ) -> object:
        """mining.submit one share; the pool's result (True when accepted)."""
        params = ["blvm.w1", job_id, extranonce2.hex(), ntime, f"{nonce:08x}"]
        return self.wait_result(self.call("mining.submit", params), notes)


def sv1_share_target(difficulty: float | None) -> float:
    """The share target of an SV1 difficulty (none sent yet: any hash)."""
    return (0xFFFF << 208) / difficulty if difficulty else float(1 << 256)


def sv1_prevhash_to_header(prevhash_hex: str) -> bytes:
    raw = bytes.fromhex(prevhash_hex)
    return b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4))


class Sv2StandardMiner:
    """Our SV2 miner on one standard channel of an SRI role (sans-IO connection, a socket)."""

    def __init__(self, pool_port: int) -> None:
        self.sock = connect_retrying(pool_port)
        self.conn = Sv2Connection.initiator(
            keys.decode_authority_public_key(SRI_PUBLIC), now=int(time.time())
        )
        self.sock.sendall(self.conn.initiate())
        self.events = pump(self.conn, self.sock)
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
        assert self.prev_hash.nbits == REGTEST_NBITS

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
            + REGTEST_NBITS.to_bytes(4, "little")
        )
        # Meet the channel target and the (regtest, ~2^255) network target: share and block.
        nonce = grind(head, min(self.target, REGTEST_TARGET))
        if nonce is None:
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
