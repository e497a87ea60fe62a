"""Our SV2 client and template provider against SRI servers (`pool_sv2`, `jd_client_sv2`).

Topology: Template Provider <- SRI role <- in-test miner (our Noise initiator + Mining
messages). The template provider is either the node's REAL one (`node.mining.
template_provider` over a regtest chainstate + mempool holding transactions) or, for the
pool's codec check, a one-template responder written here. The JD client runs in SOLOMINING
mode, so it needs nothing but the template provider. The miner checks the role's
certificate with the SRI example authority key, opens a standard channel, mines the job in
Python and submits a share; the role must accept it, and because regtest difficulty makes
it a block too, forward a SubmitSolution to the template provider. With the real TP the
block must then be connected by our chainstate, mempool transactions included, and the SRI
role pins the TP's persisted authority key (`public_key` in its `Sv2Tp` table)."""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from pathlib import Path

import pytest

from node.chain.params import REGTEST, block_subsidy
from protocols.bitcoin.tx import Tx
from protocols.sv2 import secp
from protocols.sv2.connection import Sv2Connection
from protocols.sv2.messages import (
    CoinbaseOutputConstraints,
    NewTemplate,
    Protocol,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSolution,
    TemplateSetNewPrevHash,
)
from protocols.sv2.noise import Certificate
from tests.helpers.sri import (
    REGTEST_NBITS,
    REGTEST_TARGET,
    free_port,
    jdc_config,
    need_role,
    node_template_provider,
    payout,
    pool_config,
    sha256d,
    sri_role,
    wait_until,
)
from tests.helpers.stratum_miners import Sv2StandardMiner, pump
from tests.unit.mempool.mempool_tools import spend

pytestmark = pytest.mark.interop


class OneTemplateResponder(threading.Thread):
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
            for event in pump(self.conn, sock):
                self.received.put(event)
                if isinstance(event, SetupConnection):
                    sock.sendall(self.conn.send(SetupConnectionSuccess(2, 0)))
                elif isinstance(event, CoinbaseOutputConstraints):
                    sock.sendall(self.conn.send(self.template) + self.conn.send(self.prev))
        except BaseException as exc:  # reported by the test
            self.error = exc


def _template() -> tuple[NewTemplate, TemplateSetNewPrevHash]:
    commitment = sha256d(bytes(64))  # witness root of a coinbase-only block, zero nonce
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
        n_bits=REGTEST_NBITS,
        target=REGTEST_TARGET.to_bytes(32, "little"),
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


def test_sv2_sri_pool_accepts_our_client_and_template_codec(tmp_path: Path) -> None:
    """pool_sv2 against the one-template responder: our TD codec alone, byte for byte."""
    role = "pool_sv2"
    need_role(role)
    tp_listener = socket.create_server(("127.0.0.1", 0))
    tp_listener.settimeout(60)
    template, prev = _template()
    tp = OneTemplateResponder(tp_listener, template, prev)
    tp.start()
    pool_port = free_port()
    config = pool_config(pool_port, tp_listener.getsockname()[1], payout())
    try:
        with sri_role(tmp_path, role, config):
            setup = _wait_for(tp.received, SetupConnection, 60)
            assert setup.protocol == Protocol.TEMPLATE_DISTRIBUTION
            _wait_for(tp.received, CoinbaseOutputConstraints, 30)
            miner = Sv2StandardMiner(pool_port)
            job, prev_hash = miner.job, miner.prev_hash
            nonce, ntime = miner.mine_and_submit()
            miner.close()
            assert prev_hash.prev_hash == prev.prev_hash
            solution = _wait_for(tp.received, SubmitSolution, 30)
            assert (solution.template_id, solution.header_nonce) == (1, nonce)
            assert (solution.version, solution.header_timestamp) == (job.version, ntime)
            coinbase = Tx.from_bytes(solution.coinbase_tx)
            # Standard channel, coinbase-only template: the job's merkle root is the coinbase
            # txid.
            assert coinbase.txid == job.merkle_root
            assert coinbase.version == template.coinbase_tx_version
            assert template.coinbase_tx_outputs in solution.coinbase_tx
            assert tp.error is None, tp.error
    finally:
        tp_listener.close()


@pytest.mark.parametrize(
    ("role", "make_config"), [("jd_client_sv2", jdc_config), ("pool_sv2", pool_config)]
)
def test_sv2_sri_role_mines_a_block_on_our_node_template_provider(
    tmp_path: Path, role: str, make_config
) -> None:
    """SRI role <- the node's real TP: a fee update becomes a new job; the block connects."""
    need_role(role)
    with node_template_provider(tmp_path) as node:
        tp = node.tp
        height = node.chain.height
        pool_port = free_port()
        config = make_config(pool_port, tp.port, payout(), tp.keys.authority_public_text)
        with sri_role(tmp_path, role, config):
            # The role connects, pins our authority key, sets up and gets future work + prev
            # hash.
            wait_until(lambda: tp.stats.prev_hashes_sent >= 1, 60, "template sent to the role")
            miner = Sv2StandardMiner(pool_port)
            # A better-paying transaction arrives: the TP re-sends a non-future template, and
            # the role turns it into a new job on our open channel.
            richer, _ = spend([node.coins[2]], 1, fee=10_000)
            assert node.mempool.accept(richer).accepted
            node.txs.append(richer)
            wait_until(lambda: tp.stats.templates_sent >= 2, 30, "fee-update template")
            miner.wait_for_new_job()
            prev_hash = miner.prev_hash
            nonce, _ = miner.mine_and_submit()
            miner.close()
            assert prev_hash.prev_hash == node.chain.block_hash_at(height)
            wait_until(lambda: node.chain.height == height + 1, 30, "block connected by the node")
            # The counter moves once process_block has returned, just after the tip did.
            wait_until(lambda: tp.stats.solutions_accepted == 1, 10, "solution counted")
            assert tp.stats.solutions_rejected == 0
            block = node.chain.get_block(node.chain.tip.hash)
            assert block.header.nonce == nonce
            assert {tx.txid for tx in block.txs[1:]} == {tx.txid for tx in node.txs}
            assert len(node.mempool) == 0
            fees = 2_000 + 3_000 + 10_000
            paid = sum(o.value for o in block.txs[0].outputs)
            assert paid == block_subsidy(height + 1, REGTEST) + fees
            # The TP pushes the next tip's work to the role at once.
            wait_until(lambda: tp.stats.prev_hashes_sent >= 2, 30, "new work after the block")
            assert node.error is None, node.error


def test_sv2_sri_jdc_mines_height_one_on_a_fresh_node(tmp_path: Path) -> None:
    """`blvm up` starts at genesis: the BIP34 prefix of height 1 is the one-byte OP_1."""
    role = "jd_client_sv2"
    need_role(role)
    with node_template_provider(tmp_path, n_blocks=0, n_txs=0) as node:
        tp = node.tp
        pool_port = free_port()
        config = jdc_config(pool_port, tp.port, payout(), tp.keys.authority_public_text)
        with sri_role(tmp_path, role, config):
            wait_until(lambda: tp.stats.prev_hashes_sent >= 1, 60, "template sent to the role")
            miner = Sv2StandardMiner(pool_port)
            nonce, _ = miner.mine_and_submit()
            miner.close()
            wait_until(lambda: node.chain.height == 1, 30, "block 1 connected by the node")
            block = node.chain.get_block(node.chain.tip.hash)
            assert block.header.nonce == nonce and len(block.txs) == 1
            assert block.txs[0].inputs[0].script_sig[:1] == b"\x51"
