"""Our Noise responder and message codec against SRI's `mining_device` (a real SV2 client).

SRI's CPU miner connects to our tiny in-test pool, verifies our authority-signed certificate
(`-p` with our base58 authority key), sends SetupConnection and OpenStandardMiningChannel, mines
the job we send and submits a share; we check the share's header hash meets our target, which
proves both sides agree on every byte order (prev_hash, merkle_root, target, header fields).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from protocols.sv2 import keys, secp
from protocols.sv2.connection import HandshakeComplete, Sv2Connection
from protocols.sv2.messages import (
    NewMiningJob,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    Protocol,
    SetNewPrevHash,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesStandard,
)
from protocols.sv2.noise import Certificate
from tests.conftest import require_interop

pytestmark = pytest.mark.interop

CACHE = Path(os.environ.get("BLVM_CACHE", Path.home() / ".cache" / "blvm"))
MINING_DEVICE = CACHE / "sri" / "bin" / "mining_device"
TARGET = 1 << 248  # one hash in 256 is a share: quick on one CPU core


def _events(conn: Sv2Connection, sock: socket.socket, deadline: float):
    """Yield events, reading from the socket (and writing handshake replies) as needed."""
    while True:
        while (event := conn.next_event()) is not None:
            yield event
        if time.monotonic() > deadline:
            raise TimeoutError("mining_device went quiet")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("mining_device closed the connection")
        reply = conn.receive_data(data)
        if reply:
            sock.sendall(reply)


def _expect(events, kind):
    for event in events:
        if isinstance(event, kind):
            return event
        if not isinstance(event, SubmitSharesStandard | HandshakeComplete):
            raise AssertionError(f"unexpected {event!r} while waiting for {kind.__name__}")
    raise AssertionError("event stream ended")


def test_sv2_mining_device_handshake_and_share(tmp_path: Path) -> None:
    if not MINING_DEVICE.exists():
        require_interop(
            f"SRI mining_device not built at {MINING_DEVICE}; run scripts/install-sri.sh"
        )
    authority, static = os.urandom(32), os.urandom(32)
    now = int(time.time())
    cert = Certificate.issue(authority, secp.xonly_from_secret(static), now - 5, now + 3600)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    port = listener.getsockname()[1]
    log = (tmp_path / "mining_device.log").open("w")
    proc = subprocess.Popen(
        [
            str(MINING_DEVICE),
            "-a", f"127.0.0.1:{port}",
            "-p", keys.encode_authority_public_key(secp.xonly_from_secret(authority)),
            "--id-user", "blvm-interop",
            "--cores", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        sock, _ = listener.accept()
        sock.settimeout(30)
        conn = Sv2Connection.responder(static, cert)
        events = _events(conn, sock, time.monotonic() + 60)
        _expect(events, HandshakeComplete)
        setup = _expect(events, SetupConnection)
        assert setup.protocol == Protocol.MINING and setup.min_version == 2
        sock.sendall(conn.send(SetupConnectionSuccess(used_version=2, flags=0)))
        # mining_device measures its hashrate for ~5 s before opening the channel.
        open_req = _expect(events, OpenStandardMiningChannel)
        assert open_req.user_identity == "blvm-interop"
        channel_id, job_id = 7, 1
        prev_hash, merkle_root = os.urandom(32), os.urandom(32)
        version, nbits = 0x20000000, 0x207FFFFF
        target = min(TARGET, int.from_bytes(open_req.max_target, "little"))
        for msg in (
            OpenStandardMiningChannelSuccess(
                open_req.request_id, channel_id, target.to_bytes(32, "little"), b"", 0
            ),
            NewMiningJob(channel_id, job_id, None, version, merkle_root),
            SetNewPrevHash(channel_id, job_id, prev_hash, now, nbits),
        ):
            sock.sendall(conn.send(msg))
        share = _expect(events, SubmitSharesStandard)
        assert (share.channel_id, share.job_id) == (channel_id, job_id)
        header = (
            share.version.to_bytes(4, "little")
            + prev_hash
            + merkle_root
            + share.ntime.to_bytes(4, "little")
            + nbits.to_bytes(4, "little")
            + share.nonce.to_bytes(4, "little")
        )
        digest = hashlib.sha256(hashlib.sha256(header).digest()).digest()
        assert int.from_bytes(digest, "little") <= target
        sock.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)
        listener.close()
        log.close()
