"""`blvm node` and `blvm stratum` under a notify socket, as their Type=notify units run them.

The test plays systemd: it owns the datagram socket, sets NOTIFY_SOCKET and WATCHDOG_USEC,
and requires READY=1 only once the service answers (the node's RPC; the module's SV2 port),
watchdog pings while it runs, and STOPPING=1 with a clean exit on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.sri import free_port

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def blvm(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance.cli", *args]


class FakePid1:
    """The notify socket side of systemd: collects every datagram."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[dict[str, str]] = []

    def env(self, watchdog_usec: int) -> dict[str, str]:
        return {**os.environ, "NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(watchdog_usec)}

    def wait_for(self, key: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            fields = dict(line.split("=", 1) for line in data.splitlines())
            self.messages.append(fields)
            if key in fields:
                return fields
        raise AssertionError(f"no {key} within {timeout} s; got {self.messages}")

    def count(self, key: str) -> int:
        return sum(key in m for m in self.messages)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen, pid1: FakePid1) -> None:
    proc.send_signal(signal.SIGTERM)
    pid1.wait_for("STOPPING", 30)
    assert proc.wait(60) == 0


def test_node_notifies_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    pid1 = FakePid1(tmp_path / "notify")
    rpc_port, tp_port = free_port(), free_port()
    datadir = tmp_path / "node"
    log = (tmp_path / "node.log").open("wb")
    proc = subprocess.Popen(
        blvm(
            "node", "--datadir", str(datadir), "--no-listen", "--rpcport", str(rpc_port),
            "--sv2-tp-port", str(tp_port),
        ),
        env=pid1.env(300_000),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        first = pid1.wait_for("STATUS", 60)
        assert "opening the regtest chainstate" in first["STATUS"]
        ready = pid1.wait_for("READY", 60)
        assert ready["STATUS"].startswith("height 0")
        # READY means serving: the RPC cookie exists and both ports accept.
        assert (datadir / ".cookie").exists()
        assert _port_open(rpc_port) and _port_open(tp_port)
        pid1.wait_for("WATCHDOG", 5)
        pid1.wait_for("WATCHDOG", 5)
        _stop(proc, pid1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert not (datadir / ".cookie").exists()


def test_stratum_module_notifies_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    pid1 = FakePid1(tmp_path / "notify")
    sv2_port, sv1_port, tp_port = free_port(), free_port(), free_port()
    config = tmp_path / "blvm.toml"
    config.write_text(
        f"""[modules.stratum-v2]
chain = "regtest"
payout_address = "{PAYOUT}"
pools = ["solo"]
sv2_listen = "127.0.0.1:{sv2_port}"
sv1_listen = "127.0.0.1:{sv1_port}"
node_tp = "127.0.0.1:{tp_port}"
"""
    )
    log = (tmp_path / "stratum.log").open("wb")
    proc = subprocess.Popen(
        blvm("stratum", "--config", str(config), "--state-dir", str(tmp_path / "keys")),
        env=pid1.env(300_000),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = pid1.wait_for("READY", 60)
        assert f"SV2 on port {sv2_port}" in ready["STATUS"]
        assert _port_open(sv2_port) and _port_open(sv1_port)
        pid1.wait_for("WATCHDOG", 5)
        pid1.wait_for("WATCHDOG", 5)
        _stop(proc, pid1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
