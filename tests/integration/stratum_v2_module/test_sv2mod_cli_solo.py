"""`blvm node` + `blvm stratum --config` as two processes, as systemd runs them.

An SV1 miner on the module's SV1 listener solves a job at regtest difficulty; the module
sends the block to the node over Template Distribution and the node's height (its JSON-RPC,
cookie auth) rises. The node's TP key is pinned in the config, as a user would set it.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from protocols.bitcoin.hashes import sha256d
from tests.helpers.sri import free_port, grind
from tests.helpers.stratum_miners import Sv1Miner, sv1_prevhash_to_header

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def blvm(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance.cli", *args]


def rpc(port: int, datadir: Path, method: str, params: list | None = None):
    cookie = (datadir / ".cookie").read_text().strip()
    body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        body.encode(),
        {"Authorization": "Basic " + base64.b64encode(cookie.encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())["result"]


def wait_until(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _worker_pids(parent: int) -> list[int]:
    """The module's share-server worker processes (children running worker_process)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"appliance.stratum_v2.worker_process" in cmdline:
            found.append(int(proc.name))
    return found


def _running(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie has an empty command line)."""
    alive = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    return alive


@pytest.mark.parametrize("workers", [1, 2])
def test_sv2mod_cli_solo_sv1_miner_finds_a_block(tmp_path: Path, workers: int) -> None:
    datadir = tmp_path / "node"
    printed = subprocess.run(
        blvm("node", "--datadir", str(datadir), "--print-sv2-tp-key", "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tp_key = json.loads(printed.stdout)["authority_public_key"]
    rpc_port, tp_port, sv2_port, sv1_port = (free_port() for _ in range(4))
    config = tmp_path / "blvm.toml"
    config.write_text(
        f"""[node]
chain = "regtest"

[modules.stratum-v2]
payout_address = "{PAYOUT}"
pools = ["solo"]
sv2_listen = "127.0.0.1:{sv2_port}"
sv1_listen = "127.0.0.1:{sv1_port}"
shares_per_minute = 6
node_tp = "127.0.0.1:{tp_port}"
node_tp_key = "{tp_key}"
workers = {workers}
"""
    )
    check = subprocess.run(
        blvm("stratum", "check", "--config", str(config), "--json"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["pools"] == ["solo"]

    node_log, mod_log = tmp_path / "node.log", tmp_path / "stratum.log"
    with node_log.open("wb") as nlog, mod_log.open("wb") as mlog:
        node = subprocess.Popen(
            blvm(
                "node", "--datadir", str(datadir), "--no-listen", "--rpcport", str(rpc_port),
                "--sv2-tp-port", str(tp_port),
            ),
            stdout=nlog,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        module = None
        try:
            wait_until(lambda: (datadir / ".cookie").exists(), "the node's RPC cookie")
            wait_until(lambda: rpc(rpc_port, datadir, "getblockcount") == 0, "the node RPC")
            module = subprocess.Popen(
                blvm("stratum", "--config", str(config), "--state-dir", str(tmp_path / "sv2keys")),
                stdout=mlog,
                stderr=subprocess.STDOUT,
            )
            miner = Sv1Miner(sv1_port)
            notes: list[dict] = []
            en1, en2_size, _difficulty, notify = miner.first_job(notes)
            job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime = notify[:8]
            en2 = bytes(en2_size)
            root = sha256d(bytes.fromhex(coinb1) + en1 + en2 + bytes.fromhex(coinb2))
            for step in branch:
                root = sha256d(root + bytes.fromhex(step))
            head = (
                int(version, 16).to_bytes(4, "little")
                + sv1_prevhash_to_header(prevhash)
                + root
                + int(ntime, 16).to_bytes(4, "little")
                + int(nbits, 16).to_bytes(4, "little")
            )
            bits = int(nbits, 16)
            network_target = (bits & 0xFFFFFF) << (8 * ((bits >> 24) - 3))
            nonce = grind(head, network_target)
            assert nonce is not None
            assert miner.submit(job_id, en2, ntime, nonce, notes) is True
            wait_until(lambda: rpc(rpc_port, datadir, "getblockcount") == 1, "height 1")
            best = rpc(rpc_port, datadir, "getbestblockhash")
            assert bytes.fromhex(best)[::-1] == sha256d(head + nonce.to_bytes(4, "little"))
            miner.sock.close()
            children = _worker_pids(module.pid)
            assert len(children) == (workers if workers > 1 else 0)
            module.send_signal(signal.SIGTERM)
            assert module.wait(30) == 0, mod_log.read_text()
            # No worker outlives the module.
            wait_until(lambda: not _running(children), "the workers to exit", 10)
        finally:
            if module is not None and module.poll() is None:
                module.kill()
                module.wait(10)
            node.terminate()
            node.wait(30)
    text = mod_log.read_text()
    assert f"SV1 on 127.0.0.1:{sv1_port}" in text and "authority public key" in text, text
    assert "shutting down" in text
    if workers > 1:
        assert f"{workers} share-server workers on port {sv2_port}, SV1 port {sv1_port}" in text


def test_sv2mod_workers_exit_with_a_killed_module(tmp_path: Path) -> None:
    """kill -9 of the module (no clean shutdown): its share-server workers see their pipe
    close and exit; none is left holding the ports."""
    sv2_port, tp_port = free_port(), free_port()
    config = tmp_path / "blvm.toml"
    config.write_text(
        f"""[modules.stratum-v2]
chain = "regtest"
payout_address = "{PAYOUT}"
sv2_listen = "127.0.0.1:{sv2_port}"
sv1_listen = "off"
node_tp = "127.0.0.1:{tp_port}"
workers = 2
"""
    )
    log_path = tmp_path / "stratum.log"
    with log_path.open("wb") as log:
        module = subprocess.Popen(
            blvm("stratum", "--config", str(config), "--state-dir", str(tmp_path / "keys")),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: "share-server workers on port" in log_path.read_text(), "workers")
            children = _worker_pids(module.pid)
            assert len(children) == 2, log_path.read_text()
            module.kill()
            module.wait(10)
            wait_until(lambda: not _running(children), "the orphaned workers to exit", 15)
        finally:
            if module.poll() is None:
                module.kill()
                module.wait(10)
