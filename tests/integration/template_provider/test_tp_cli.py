"""`blvm node` as a miner uses it: print the TP key for the pool config, run, get work.

The key printed by `--print-sv2-tp-key --json` is the one the running node's template
provider proves with its certificate, so a pool configured with it connects.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from protocols.sv2 import keys
from tests.unit.template_provider.tp_tools import TdClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _blvm(*args: str) -> list[str]:
    return [sys.executable, "-m", "appliance.cli", "node", *args]


def test_tp_cli_printed_key_is_what_the_running_node_proves(tmp_path: Path) -> None:
    datadir = tmp_path / "node"
    out = subprocess.run(
        _blvm("--datadir", str(datadir), "--print-sv2-tp-key", "--json"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed = json.loads(out.stdout)
    authority = keys.decode_authority_public_key(printed["authority_public_key"])
    assert Path(printed["key_file"]).stat().st_mode & 0o777 == 0o600

    tp_port = _free_port()
    log_path = tmp_path / "node.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            _blvm(
                "--datadir",
                str(datadir),
                "--no-listen",
                "--rpcport",
                str(_free_port()),
                "--sv2-tp-port",
                str(tp_port),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            async def scenario() -> None:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        client = await TdClient.connect(tp_port, authority)
                        break
                    except OSError:
                        assert proc.poll() is None, log_path.read_text()
                        assert time.monotonic() < deadline, "TP never listened"
                        await asyncio.sleep(0.2)
                tpl, prev = await client.work()
                assert tpl.coinbase_prefix == b"\x51"  # height 1 on a fresh regtest chain
                assert prev.n_bits == 0x207FFFFF
                await client.close()

            asyncio.run(scenario())
        finally:
            proc.terminate()
            proc.wait(30)
    text = log_path.read_text()
    assert printed["authority_public_key"] in text  # logged for whoever sets up the pool
    assert proc.returncode == 0, text
