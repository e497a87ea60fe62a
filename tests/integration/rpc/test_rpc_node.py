"""The node's JSON-RPC through a standard client library from PyPI (python-bitcoinrpc),
against `blvm node` run as users run it."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from node.rpc.auth import make_rpcauth
from tests.helpers.btcd import REGTEST_MINING_ADDRESS, free_port

ADDRESS = REGTEST_MINING_ADDRESS
BECH32 = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


class RunningNode:
    def __init__(self, datadir: Path, *extra: str) -> None:
        self.datadir = datadir
        self.rpc_port = free_port()
        self.p2p_port = free_port()
        self.log = open(datadir.parent / f"{datadir.name}.log", "wb")  # noqa: SIM115
        cmd = [
            sys.executable,
            "-m",
            "appliance.cli",
            "node",
            "--datadir",
            str(datadir),
            "--port",
            str(self.p2p_port),
            "--rpcport",
            str(self.rpc_port),
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not (datadir / ".cookie").exists():
            assert self.proc.poll() is None, (datadir.parent / f"{datadir.name}.log").read_text()
            assert time.time() < deadline, "node did not write its cookie"
            time.sleep(0.1)
        self.user, self.password = (datadir / ".cookie").read_text().split(":")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def proxy(self, user: str | None = None, password: str | None = None) -> AuthServiceProxy:
        return AuthServiceProxy(
            f"http://{user or self.user}:{password or self.password}@127.0.0.1:{self.rpc_port}",
            timeout=120,
        )

    def raw(self, body: object, auth: tuple[str, str] | None = None) -> tuple[int, object]:
        req = urllib.request.Request(self.url, data=json.dumps(body).encode())
        user, password = auth or (self.user, self.password)
        req.add_header(
            "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                data = resp.read()
                return resp.status, json.loads(data) if data else None
        except urllib.error.HTTPError as exc:
            data = exc.read()
            return exc.code, json.loads(data) if data else None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    line = make_rpcauth("alice", "correct horse")
    n = RunningNode(tmp_path_factory.mktemp("rpc") / "node", "--rpcauth", line)
    yield n
    n.stop()


def test_cookie_is_private_and_credentials_work(node: RunningNode) -> None:
    assert os.stat(node.datadir / ".cookie").st_mode & 0o777 == 0o600
    assert node.proxy().getblockcount() >= 0
    assert node.proxy("alice", "correct horse").getblockcount() >= 0


def test_bad_credentials_get_401(node: RunningNode) -> None:
    status, _ = node.raw({"method": "getblockcount", "id": 1}, auth=("alice", "wrong"))
    assert status == 401
    status, _ = node.raw({"method": "getblockcount", "id": 1}, auth=("__cookie__", "0" * 64))
    assert status == 401


def test_mining_and_chain_queries(node: RunningNode) -> None:
    rpc = node.proxy()
    start = rpc.getblockcount()
    hashes = rpc.generatetoaddress(101, ADDRESS)
    assert len(hashes) == 101 and rpc.getblockcount() == start + 101
    assert rpc.getbestblockhash() == hashes[-1]
    assert rpc.getblockhash(start + 101) == hashes[-1]
    info = rpc.getblockchaininfo()
    assert info["chain"] == "regtest" and info["blocks"] == start + 101 and not info["pruned"]
    header = rpc.getblockheader(hashes[0])
    assert header["height"] == start + 1 and header["nextblockhash"] == hashes[1]
    raw_header = rpc.getblockheader(hashes[0], False)
    assert len(raw_header) == 160
    block1 = rpc.getblock(hashes[-1])
    assert block1["hash"] == hashes[-1] and len(block1["tx"]) == 1
    block2 = rpc.getblock(hashes[-1], 2)
    cb = block2["tx"][0]
    assert cb["vout"][0]["scriptPubKey"]["address"] == ADDRESS
    assert "coinbase" in cb["vin"][0]
    raw = rpc.getblock(hashes[-1], 0)
    decoded = rpc.decoderawtransaction(cb["hex"])
    assert decoded["txid"] == cb["txid"]
    assert raw.startswith(rpc.getblockheader(hashes[-1], False))
    found = rpc.getrawtransaction(cb["txid"], True, hashes[-1])
    assert found["txid"] == cb["txid"] and found["confirmations"] == 1
    assert rpc.getrawtransaction(cb["txid"], False, hashes[-1]) == cb["hex"]
    with pytest.raises(JSONRPCException) as err:
        rpc.getrawtransaction(cb["txid"])  # no txindex, not in the mempool
    assert err.value.error["code"] == -5
    assert rpc.getchaintips()[0]["status"] == "active"
    assert rpc.getdifficulty() > 0
    assert rpc.getmininginfo()["blocks"] == start + 101
    assert rpc.getconnectioncount() == 0 and rpc.getpeerinfo() == []
    assert rpc.getnetworkinfo()["localservicesnames"] == ["NODE_NETWORK", "NODE_WITNESS"]
    assert rpc.uptime() >= 0


def test_submitblock_results(node: RunningNode) -> None:
    rpc = node.proxy()
    tip = rpc.getbestblockhash()
    raw = rpc.getblock(tip, 0)
    assert rpc.submitblock(raw) == "duplicate"
    with pytest.raises(JSONRPCException) as err:
        rpc.submitblock("00")
    assert err.value.error == {"code": -22, "message": "Block decode failed"}
    made = rpc.generateblock(ADDRESS, [], False)
    assert rpc.submitblock(made["hex"]) is None
    assert rpc.getbestblockhash() == made["hash"]
    # A block whose merkle root does not match is rejected with Core's reason.
    bad = bytearray.fromhex(made["hex"])
    bad[40] ^= 1
    assert rpc.submitblock(bad.hex()) in ("bad-txnmrklroot", "high-hash")


def test_error_codes_for_bad_params(node: RunningNode) -> None:
    rpc = node.proxy()
    cases = [
        (lambda: rpc.getblockhash(10**9), -8),
        (lambda: rpc.getblockhash("x"), -3),
        (lambda: rpc.getblock("00" * 32), -5),
        (lambda: rpc.getblock("zz"), -8),
        (lambda: rpc.getblockcount(1), -1),
        (lambda: rpc.generatetoaddress(1, "not-an-address"), -5),
        (lambda: rpc.nosuchmethod(), -32601),
        (lambda: rpc.decoderawtransaction("00"), -22),
    ]
    for call, code in cases:
        with pytest.raises(JSONRPCException) as err:
            call()
        assert err.value.error["code"] == code, err.value.error


def test_json_rpc_2_batches_and_named_params(node: RunningNode) -> None:
    status, reply = node.raw(
        [
            {"jsonrpc": "2.0", "id": 1, "method": "getblockcount"},
            {"jsonrpc": "2.0", "id": 2, "method": "getblockhash", "params": {"height": 0}},
            {"jsonrpc": "2.0", "id": 3, "method": "nosuch"},
            {"jsonrpc": "2.0", "method": "getblockcount"},  # notification: no reply
        ]
    )
    assert status == 200 and [r["id"] for r in reply] == [1, 2, 3]
    assert reply[1]["result"] == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert reply[2]["error"]["code"] == -32601 and "result" not in reply[2]
    status, reply = node.raw({"method": "nosuch", "id": 7})
    assert status == 404 and reply["error"]["code"] == -32601 and reply["result"] is None
    status, reply = node.raw({"jsonrpc": "2.0", "method": "getblockcount"})
    assert status == 204


def test_rpc_binds_to_localhost_only(node: RunningNode) -> None:
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    port_hex = f"{node.rpc_port:04X}"
    ours = [
        row.split()[1]
        for row in listening
        if row.split()[1].endswith(":" + port_hex) and row.split()[3] == "0A"
    ]
    assert ours == ["0100007F:" + port_hex]  # 127.0.0.1 only, in /proc's byte order


def test_stop_over_rpc_removes_cookie(tmp_path: Path) -> None:
    n = RunningNode(tmp_path / "node")
    assert n.proxy().stop() == "Bitcoin server stopping"
    n.proc.wait(30)
    assert n.proc.returncode == 0
    assert not (tmp_path / "node" / ".cookie").exists()
    n.log.close()


def _spend_coinbase(rpc: AuthServiceProxy, key, block_hash: str, fee: int = 10_000):
    """A signed P2WPKH spend of the coinbase of ``block_hash`` (paid to ``key``)."""
    from node.mining.workload import RegtestWorkload
    from protocols.bitcoin.hashes import hex_to_hash
    from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

    cb = rpc.getblock(block_hash, 2)["tx"][0]
    value = round(float(cb["vout"][0]["value"]) * 100_000_000)
    coin_out = TxOut(value, key.p2wpkh)
    tx = Tx(
        2,
        [TxIn(outpoint(hex_to_hash(cb["txid"]), 0), b"", 0xFFFFFFFD)],
        [TxOut(value - fee, key.p2wpkh)],
        0,
    )

    class _Coin:
        output = coin_out

    _Coin.key = key
    RegtestWorkload.sign(tx, [_Coin])
    return tx


def test_mempool_and_getblocktemplate(node: RunningNode) -> None:
    from node.mining.assembler import solve
    from node.wallet.keys import WalletKey
    from protocols.bitcoin.address import script_to_address
    from protocols.bitcoin.block import Block, BlockHeader
    from protocols.bitcoin.hashes import hex_to_hash
    from protocols.bitcoin.merkle import merkle_root
    from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut

    rpc = node.proxy()
    key = WalletKey.from_seed(b"rpc-test", 0)
    address = script_to_address(key.p2wpkh, "regtest")
    mined = rpc.generatetoaddress(3, address)
    rpc.generatetoaddress(100, ADDRESS)  # mature them
    txs = [_spend_coinbase(rpc, key, h, fee=10_000 * (i + 1)) for i, h in enumerate(mined)]
    for tx in txs:
        assert rpc.sendrawtransaction(tx.serialize().hex()) == tx.txid_hex
    assert set(rpc.getrawmempool()) == {tx.txid_hex for tx in txs}
    info = rpc.getmempoolinfo()
    assert info["size"] == 3
    entry = rpc.getmempoolentry(txs[0].txid_hex)
    assert entry["vsize"] == txs[0].vsize
    # A cheaper double spend is refused; testmempoolaccept says why without adding it.
    # (Full RBF: only a replacement paying more may take its place.)
    twin = _spend_coinbase(rpc, key, mined[0], fee=5_000)
    verdict = rpc.testmempoolaccept([twin.serialize().hex()])[0]
    assert verdict["allowed"] is False and verdict["reject-reason"] == "insufficient fee"
    richer = _spend_coinbase(rpc, key, mined[0], fee=12_000)
    assert rpc.testmempoolaccept([richer.serialize().hex()])[0]["allowed"] is True
    with pytest.raises(JSONRPCException) as err:
        rpc.getblocktemplate({})
    assert err.value.error["code"] == -8
    gbt = rpc.getblocktemplate({"rules": ["segwit"]})
    assert gbt["height"] == rpc.getblockcount() + 1
    assert {t["txid"] for t in gbt["transactions"]} == {tx.txid_hex for tx in txs}
    fees = sum(t["fee"] for t in gbt["transactions"])
    from node.mining.workload import regtest_subsidy

    # The shared node is past regtest's first halving (every 150 blocks) by now.
    assert fees == 60_000 and gbt["coinbasevalue"] == regtest_subsidy(gbt["height"]) + fees
    # Build the block from the template exactly as a miner would, and submit it.
    from node.mining.assembler import coinbase_script_sig

    coinbase = Tx(
        2,
        [
            TxIn(
                NULL_OUTPOINT,
                coinbase_script_sig(gbt["height"], b"miner"),
                0xFFFFFFFF,
                [b"\x00" * 32],
            )
        ],
        [
            TxOut(gbt["coinbasevalue"], key.p2wpkh),
            TxOut(0, bytes.fromhex(gbt["default_witness_commitment"])),
        ],
        0,
    )
    body = [coinbase] + [Tx.from_hex(t["data"]) for t in gbt["transactions"]]
    header = BlockHeader(
        gbt["version"],
        hex_to_hash(gbt["previousblockhash"]),
        merkle_root([t.txid for t in body])[0],
        gbt["curtime"],
        int(gbt["bits"], 16),
        0,
    )
    # Proposal mode (BIP23) judges the unsolved block: valid; a broken one gets its reason.
    assert "proposal" in gbt["capabilities"]
    unsolved = Block(header, body).serialize().hex()
    assert rpc.getblocktemplate({"mode": "proposal", "data": unsolved}) is None
    broken = Block(dataclasses.replace(header, merkle_root=bytes(32)), body)
    verdict = rpc.getblocktemplate({"mode": "proposal", "data": broken.serialize().hex()})
    assert verdict == "bad-txnmrklroot"
    with pytest.raises(JSONRPCException) as err:
        rpc.getblocktemplate({"mode": "proposal", "data": "00"})
    assert err.value.error["code"] == -22
    with pytest.raises(JSONRPCException) as err:
        rpc.getblocktemplate({"mode": "proposal"})
    assert err.value.error["code"] == -3
    assert rpc.getbestblockhash() == gbt["previousblockhash"]  # nothing was connected
    assert solve(header)
    block = Block(header, body)
    assert rpc.getblocktemplate({"mode": "proposal", "data": block.serialize().hex()}) is None
    assert rpc.submitblock(block.serialize().hex()) is None
    assert rpc.getblocktemplate({"mode": "proposal", "data": block.serialize().hex()}) == (
        "duplicate"
    )
    assert rpc.getbestblockhash() == block.hash_hex
    assert rpc.getrawmempool() == []
    assert rpc.getrawtransaction(txs[0].txid_hex, False, block.hash_hex) == txs[0].serialize().hex()


def test_generateblock_with_mempool_txid_and_raw_transaction(node: RunningNode) -> None:
    from node.wallet.keys import WalletKey
    from protocols.bitcoin.address import script_to_address

    rpc = node.proxy()
    key = WalletKey.from_seed(b"rpc-generateblock", 0)
    mined = rpc.generatetoaddress(2, script_to_address(key.p2wpkh, "regtest"))
    rpc.generatetoaddress(100, ADDRESS)
    in_pool = _spend_coinbase(rpc, key, mined[0], fee=7_000)
    raw_only = _spend_coinbase(rpc, key, mined[1], fee=9_000)
    rpc.sendrawtransaction(in_pool.serialize().hex())
    made = rpc.generateblock(ADDRESS, [in_pool.txid_hex, raw_only.serialize().hex()])
    assert rpc.getbestblockhash() == made["hash"]
    block = rpc.getblock(made["hash"], 2)
    assert [t["txid"] for t in block["tx"][1:]] == [in_pool.txid_hex, raw_only.txid_hex]
    coinbase_sats = round(sum(float(o["value"]) for o in block["tx"][0]["vout"]) * 100_000_000)
    subsidy = (50 * 100_000_000) >> (block["height"] // 150)
    assert coinbase_sats == subsidy + 16_000
    with pytest.raises(JSONRPCException) as err:
        rpc.generateblock(ADDRESS, ["00" * 32])
    assert err.value.error["code"] == -5
