"""More of the node's JSON-RPC through python-bitcoinrpc against `blvm node` processes: peers
(addnode/getpeerinfo between two real nodes), getblocktemplate longpoll, pruning, mempool
error codes, batches with mixed errors and JSON-RPC 1.0 HTTP status codes."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bitcoinrpc.authproxy import JSONRPCException

from node.service import NodeConfig
from tests.integration.rpc.test_rpc_node import ADDRESS, RunningNode, _spend_coinbase

# Several nodes run at once here: let each SV2 template provider (where the node has one)
# take a free port instead of the network's fixed default.
FREE_TP_PORT = ("--sv2-tp-port", "0") if "sv2_tp_port" in NodeConfig.__dataclass_fields__ else ()


def start_node(datadir: Path, *extra: str) -> RunningNode:
    return RunningNode(datadir, *FREE_TP_PORT, *extra)


def rpc_error(call: Callable[[], Any]) -> dict:
    with pytest.raises(JSONRPCException) as err:
        call()
    return err.value.error


def wait_until(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def post_bytes(node: RunningNode, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(node.url, data=body)
    token = base64.b64encode(f"{node.user}:{node.password}".encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            data = resp.read()
            return resp.status, json.loads(data) if data else None
    except urllib.error.HTTPError as exc:
        data = exc.read()
        return exc.code, json.loads(data) if data else None


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    n = start_node(tmp_path_factory.mktemp("rpccov") / "node")
    yield n
    n.stop()


def test_addnode_and_peer_queries_between_two_nodes(tmp_path: Path) -> None:
    a = start_node(tmp_path / "a")
    b = start_node(tmp_path / "b")
    try:
        ra, rb = a.proxy(), b.proxy()
        target = f"127.0.0.1:{b.p2p_port}"
        assert ra.addnode(target, "add") is None
        assert wait_until(lambda: ra.getconnectioncount() == 1 and rb.getconnectioncount() == 1)
        [pa] = ra.getpeerinfo()
        [pb] = rb.getpeerinfo()
        assert pa["addr"] == target and pa["inbound"] is False
        assert pa["connection_type"] == "manual"
        assert pb["inbound"] is True and pb["connection_type"] == "inbound"
        for info in (pa, pb):
            assert info["subver"] == "/blvm:0.1.0/"
            assert "NODE_WITNESS" in info["servicesnames"]
            assert info["version"] >= 70016 and info["conntime"] > 0
        assert wait_until(lambda: ra.getpeerinfo()[0]["bytesrecv"] > 0)
        info = ra.getnetworkinfo()
        assert info["connections"] == 1 and info["connections_out"] == 1
        # Blocks mined on one node reach the other through the connection.
        hashes = ra.generatetoaddress(3, ADDRESS)
        assert wait_until(lambda: rb.getbestblockhash() == hashes[-1])

        assert rpc_error(lambda: ra.addnode(target, "add")) == {
            "code": -23,
            "message": "Error: Node already added",
        }
        err = rpc_error(lambda: ra.addnode("127.0.0.1:1", "remove"))
        assert err["code"] == -24 and "has not been added" in err["message"]
        assert rpc_error(lambda: ra.addnode(target, "bogus"))["code"] == -8
        assert rpc_error(lambda: ra.addnode("127.0.0.1:notaport", "add"))["code"] == -30

        assert ra.addnode(target, "remove") is None
        assert wait_until(lambda: ra.getconnectioncount() == 0 and rb.getconnectioncount() == 0)
        assert rpc_error(lambda: ra.addnode(target, "remove"))["code"] == -24

        # onetry: one connection, not remembered (so "remove" still knows nothing of it).
        assert ra.addnode(target, "onetry") is None
        assert wait_until(lambda: ra.getconnectioncount() == 1)
        assert ra.getpeerinfo()[0]["connection_type"] == "outbound-full-relay"
        assert rpc_error(lambda: ra.addnode(target, "remove"))["code"] == -24
    finally:
        a.stop()
        b.stop()


def test_getblocktemplate_longpoll_returns_on_new_block(node: RunningNode) -> None:
    rpc = node.proxy()
    rpc.generatetoaddress(1, ADDRESS)
    first = rpc.getblocktemplate({"rules": ["segwit"]})
    answer: dict[str, Any] = {}

    def longpoll() -> None:
        waiting = node.proxy()  # a client of its own: one HTTP connection per thread
        request = {"rules": ["segwit"], "longpollid": first["longpollid"]}
        answer["gbt"] = waiting.getblocktemplate(request)
        answer["at"] = time.monotonic()

    thread = threading.Thread(target=longpoll, daemon=True)
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive(), "a longpoll must wait while the tip is unchanged"
    mined_at = time.monotonic()
    [new_tip] = rpc.generatetoaddress(1, ADDRESS)
    thread.join(30)
    assert not thread.is_alive()
    gbt = answer["gbt"]
    assert gbt["previousblockhash"] == new_tip and gbt["height"] == first["height"] + 1
    assert gbt["longpollid"] != first["longpollid"]
    assert answer["at"] - mined_at < 10
    # A stale longpollid answers at once.
    started = time.monotonic()
    stale = rpc.getblocktemplate({"rules": ["segwit"], "longpollid": first["longpollid"]})
    assert stale["previousblockhash"] == new_tip and time.monotonic() - started < 5


def test_pruneblockchain_on_a_node_that_does_not_prune(node: RunningNode) -> None:
    err = rpc_error(lambda: node.proxy().pruneblockchain(1))
    assert err == {"code": -1, "message": "Cannot prune blocks because node is not in prune mode."}


def test_pruned_regtest_node(tmp_path: Path) -> None:
    n = start_node(tmp_path / "pruned", "--prune", "0.01", "--fast-prune")
    try:
        rpc = n.proxy()
        assert rpc.getnetworkinfo()["localservicesnames"] == [
            "NODE_WITNESS",
            "NODE_NETWORK_LIMITED",
        ]
        hashes = []
        for _ in range(7):
            hashes += rpc.generatetoaddress(100, ADDRESS)
        height = rpc.getblockcount()
        assert height == 700
        assert rpc_error(lambda: rpc.pruneblockchain(-1))["code"] == -8
        err = rpc_error(lambda: rpc.pruneblockchain(height + 1))
        assert err == {
            "code": -8,
            "message": "Blockchain is shorter than the attempted prune height.",
        }
        last_pruned = rpc.pruneblockchain(height)
        assert 0 < last_pruned <= height - 288
        info = rpc.getblockchaininfo()
        assert info["pruned"] is True and info["pruneheight"] == last_pruned + 1
        err = rpc_error(lambda: rpc.getblock(hashes[0]))
        assert err == {"code": -1, "message": "Block not available (pruned data)"}
        assert rpc_error(lambda: rpc.getblock(hashes[0], 0))["code"] == -1
        assert rpc.getblockheader(hashes[0])["height"] == 1  # headers stay
        kept = rpc.getblock(hashes[-288])
        assert kept["height"] == height - 287
        assert rpc.getblock(rpc.getblockhash(last_pruned + 1))["height"] == last_pruned + 1
        err = rpc_error(lambda: rpc.getrawtransaction(kept["tx"][0], False, hashes[0]))
        assert err["code"] == -1 and err["message"].startswith("Block not available")
    finally:
        n.stop()


def test_mempool_rpc_errors(node: RunningNode) -> None:
    from node.wallet.keys import WalletKey
    from protocols.bitcoin.address import script_to_address

    rpc = node.proxy()
    assert rpc_error(lambda: rpc.getmempoolentry("ab" * 32)) == {
        "code": -5,
        "message": "Transaction not in mempool",
    }
    assert rpc_error(lambda: rpc.getmempoolentry("xyz"))["code"] == -8
    key = WalletKey.from_seed(b"rpc-coverage", 0)
    [funded] = rpc.generatetoaddress(1, script_to_address(key.p2wpkh, "regtest"))
    rpc.generatetoaddress(100, ADDRESS)
    tx = _spend_coinbase(rpc, key, funded)
    raw = tx.serialize().hex()
    assert rpc.sendrawtransaction(raw) == tx.txid_hex
    assert rpc.sendrawtransaction(raw) == tx.txid_hex  # already in the mempool: same answer
    [block] = rpc.generatetoaddress(1, ADDRESS)
    assert tx.txid_hex in rpc.getblock(block)["tx"]
    assert rpc_error(lambda: rpc.sendrawtransaction(raw)) == {
        "code": -27,
        "message": "Transaction outputs already in utxo set",
    }
    twin = _spend_coinbase(rpc, key, funded, fee=20_000)  # spends the now-spent coinbase
    assert rpc_error(lambda: rpc.sendrawtransaction(twin.serialize().hex())) == {
        "code": -25,
        "message": "bad-txns-inputs-missingorspent",
    }
    assert rpc_error(lambda: rpc.sendrawtransaction("zz"))["code"] == -22
    assert rpc_error(lambda: rpc.testmempoolaccept([]))["code"] == -8
    assert rpc_error(lambda: rpc.getrawmempool(True, True))["code"] == -8
    seq = rpc.getrawmempool(False, True)
    assert seq["txids"] == [] and isinstance(seq["mempool_sequence"], int)


def test_batch_with_mixed_errors(node: RunningNode) -> None:
    status, reply = node.raw(
        [
            {"method": "getblockcount", "id": 1},
            {"method": "getblockhash", "params": [-5], "id": 2},
            {"method": "nosuchmethod", "id": 3},
            "not an object",
            {"method": 7, "id": 5},
            {"method": "getblockhash", "params": ["x"], "id": 6},
            {"jsonrpc": "2.0", "method": "getblockhash", "params": [0], "id": 7},
        ]
    )
    assert status == 200 and len(reply) == 7
    by_id = {r["id"]: r for r in reply if r["id"] is not None}
    assert by_id[1]["error"] is None and isinstance(by_id[1]["result"], int)
    assert by_id[2]["error"]["code"] == -8 and by_id[2]["result"] is None
    assert by_id[3]["error"]["code"] == -32601
    assert reply[3] == {
        "result": None,
        "error": {"code": -32600, "message": "Invalid Request object"},
        "id": None,
    }
    assert by_id[5]["error"]["code"] == -32600
    assert by_id[6]["error"]["code"] == -3
    assert by_id[7] == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
    }


def test_json_rpc_1_http_status_codes(node: RunningNode) -> None:
    assert node.raw({"method": "getblockcount", "id": 1})[0] == 200
    status, reply = node.raw({"method": "getblockhash", "params": [-5], "id": 2})
    assert status == 500 and reply["error"]["code"] == -8 and reply["id"] == 2
    status, reply = node.raw({"method": "nosuchmethod", "id": 3})
    assert status == 404 and reply["error"]["code"] == -32601
    status, reply = node.raw({"method": 5, "id": 4})
    assert status == 400 and reply["error"]["code"] == -32600
    status, reply = node.raw("just a string")
    assert status == 400 and reply["error"]["code"] == -32600
    status, reply = post_bytes(node, b"{not json")
    assert status == 500 and reply["error"] == {"code": -32700, "message": "Parse error"}
    # JSON-RPC 2.0 puts errors in the body with HTTP 200.
    status, reply = node.raw({"jsonrpc": "2.0", "method": "nosuchmethod", "id": 8})
    assert status == 200 and reply["error"]["code"] == -32601 and "result" not in reply


def test_fast_prune_is_refused_outside_regtest(tmp_path: Path) -> None:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "appliance.cli", "node", "--chain", "signet", "--fast-prune"]
    done = subprocess.run(
        [*cmd, "--datadir", str(tmp_path / "x")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "regtest-only" in done.stderr
    assert not (tmp_path / "x").exists()


def test_submitblock_of_a_fork_block_is_inconclusive(node: RunningNode) -> None:
    rpc = node.proxy()
    stale = rpc.generateblock(ADDRESS, [], False)  # built on the tip, not submitted
    [winner] = rpc.generatetoaddress(1, ADDRESS)  # a sibling takes the tip first
    assert rpc.submitblock(stale["hex"]) == "inconclusive"
    assert rpc.getbestblockhash() == winner
    tips = {t["hash"]: t for t in rpc.getchaintips()}
    assert tips[winner]["status"] == "active"
    assert tips[stale["hash"]]["status"] == "valid-headers"
    assert tips[stale["hash"]]["branchlen"] == 1
    assert rpc.getblockheader(stale["hash"])["confirmations"] == -1
    assert rpc.submitblock(stale["hex"]) == "duplicate"
