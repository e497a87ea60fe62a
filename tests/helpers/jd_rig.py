"""Job declaration test rigs: our node's JSON-RPC over a chain and mempool (cookie auth, as
`blvm node` serves it), a JD client's coinbase split the way SRI's JDC splits it, and a
minimal JD client connection."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.node_rpc import NodeRpc
from node.mining.assembler import WITNESS_RESERVED_VALUE, witness_commitment_script
from node.rpc.auth import Authenticator, write_cookie
from node.rpc.context import NodeContext
from node.rpc.dispatch import Dispatcher
from node.rpc.server import RpcServer
from node.service import RPC_MODULES
from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.script import push_int
from protocols.bitcoin.tx import NULL_OUTPOINT, Tx, TxIn, TxOut
from protocols.sv2.messages import Protocol, SetupConnection
from tests.integration.stratum_v2.sv2srv_client import Sv2TestClient

JD_TAG = b"/blvm-jd-test/"


@contextlib.contextmanager
def node_rpc(chain: Any, mempool: Any, cookie_dir: Path) -> Iterator[NodeRpc]:
    """Our node's real RPC server over `chain`/`mempool`; yields a client using its cookie."""
    ctx = NodeContext(chain, mempool=mempool)
    dispatcher = Dispatcher(ctx)
    for module in RPC_MODULES:
        dispatcher.register_module(module)
    ctx.dispatcher = dispatcher
    cookie_dir.mkdir(parents=True, exist_ok=True)
    auth = Authenticator()
    server = RpcServer(dispatcher, auth)
    server.start()
    _, auth.cookie_password = write_cookie(cookie_dir)
    try:
        yield NodeRpc("127.0.0.1", server.port, cookie_dir=cookie_dir)
    finally:
        server.stop()


@dataclass(frozen=True, slots=True)
class JdCoinbase:
    """A coinbase as a JD client declares it and then sets it as a custom job."""

    tx: Tx
    prefix: bytes  # witness serialization up to the extranonce
    suffix: bytes
    script_prefix: bytes  # scriptSig before the extranonce (SetCustomMiningJob.coinbase_prefix)
    extranonce_size: int

    @property
    def outputs(self) -> bytes:
        return compact_size(len(self.tx.outputs)) + b"".join(o.serialize() for o in self.tx.outputs)


def jd_coinbase(
    height: int, outputs: Sequence[TxOut], txs: Sequence[Tx], extranonce_size: int
) -> JdCoinbase:
    """Coinbase paying `outputs` plus the witness commitment of `txs`, extranonce last in the
    scriptSig after a push opcode for it (the layout SRI's job factory uses)."""
    script_prefix = push_int(height) + bytes([len(JD_TAG)]) + JD_TAG + bytes([extranonce_size])
    script_sig = script_prefix + bytes(extranonce_size)
    outs = [*outputs, TxOut(0, witness_commitment_script(list(txs)))]
    tx = Tx(2, [TxIn(NULL_OUTPOINT, script_sig, 0xFFFFFFFF)], outs, 0)
    tx.inputs[0].witness = [WITNESS_RESERVED_VALUE]
    raw = tx.serialize()
    cut = 4 + 2 + 1 + 36 + len(compact_size(len(script_sig))) + len(script_prefix)
    return JdCoinbase(tx, raw[:cut], raw[cut + extranonce_size :], script_prefix, extranonce_size)


async def jd_connect(port: int, authority: bytes, flags: int = 1) -> Sv2TestClient:
    """A JD client connection set up for Job Declaration (DECLARE_TX_DATA by default)."""
    client = await Sv2TestClient.connect(port, authority)
    client.send(
        SetupConnection(
            Protocol.JOB_DECLARATION, 2, 2, flags, "127.0.0.1", 0, "blvm-test", "", "", "jdc"
        )
    )
    return client
