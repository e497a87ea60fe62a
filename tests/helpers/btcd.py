"""btcd, an independent Go full node, run on loopback as a real P2P peer."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import require_interop

REGTEST_MINING_ADDRESS = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"  # any valid regtest P2PKH


def btcd_binary() -> str:
    cache = Path(os.environ.get("BLVM_CACHE", Path.home() / ".cache" / "blvm"))
    candidate = cache / "go" / "bin" / "btcd"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("btcd")
    if found:
        return found
    require_interop("btcd not installed: run scripts/install-btcd.sh")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Btcd:
    """A btcd regtest node in ``datadir`` with RPC (no TLS) on loopback."""

    def __init__(
        self,
        datadir: Path,
        *,
        connect: list[int] = (),
        listen: bool = True,
        mining_address: str = REGTEST_MINING_ADDRESS,
    ) -> None:
        self.datadir = datadir
        self.p2p_port = free_port()
        self.rpc_port = free_port()
        self.user, self.password = "blvm", os.urandom(8).hex()
        args = [
            btcd_binary(),
            "--regtest",
            f"--datadir={datadir / 'data'}",
            f"--logdir={datadir / 'logs'}",
            f"--rpclisten=127.0.0.1:{self.rpc_port}",
            f"--rpcuser={self.user}",
            f"--rpcpass={self.password}",
            "--notls",
            f"--miningaddr={mining_address}",
            "--nodnsseed",
            "--debuglevel=info",
        ]
        args.append(f"--listen=127.0.0.1:{self.p2p_port}" if listen else "--nolisten")
        args += [f"--connect=127.0.0.1:{p}" for p in connect]
        datadir.mkdir(parents=True, exist_ok=True)
        self.log = open(datadir / "btcd.out", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_rpc()

    def _wait_rpc(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"btcd exited: {(self.datadir / 'btcd.out').read_text()[-2000:]}"
                )
            try:
                self.rpc("getblockcount")
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("btcd RPC did not come up")

    def rpc(self, method: str, *params: object) -> object:
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)})
        req = urllib.request.Request(f"http://127.0.0.1:{self.rpc_port}", data=body.encode())
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=120) as resp:
            reply = json.loads(resp.read())
        if reply.get("error"):
            raise RuntimeError(f"btcd {method}: {reply['error']}")
        return reply["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
