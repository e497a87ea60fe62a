"""Default-signet blocks through our chainstate and Bitcoin Core's engine: same verdicts."""

from __future__ import annotations

from pathlib import Path

from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import SIGNET
from node.mining.assembler import solve
from protocols.bitcoin.block import Block
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.tx import TxOut
from tests.helpers.kernel import KernelOracle

DATA = Path(__file__).resolve().parents[2] / "data" / "signet_blocks_1_10.txt"


def test_signet_blocks_agree_with_kernel_and_bad_signature_is_rejected(tmp_path: Path) -> None:
    raws = [bytes.fromhex(line) for line in DATA.read_text().split()]
    ours = Chainstate.open(tmp_path / "ours", SIGNET)
    kernel = KernelOracle("signet")
    try:
        for height, raw in enumerate(raws[:-1], start=1):
            block_hash = Block.from_bytes(raw).hash
            result = ours.process_block(raw)
            assert result.status == BlockStatus.ACCEPTED and ours.tip.hash == block_hash, result
            assert kernel.submit(raw, block_hash), height
        # The last block with one bit of its signature flipped, re-solved at signet difficulty:
        # the proof of work is fine, the block signature is not.
        bad = Block.from_bytes(raws[-1])
        cb = bad.txs[0]
        script = bytearray(cb.outputs[-1].script_pubkey)
        script[-40] ^= 1
        cb.outputs[-1] = TxOut(0, bytes(script))
        cb.invalidate()
        bad.header.merkle_root = merkle_root([tx.txid for tx in bad.txs])[0]
        assert solve(bad.header, 200_000_000)
        raw = bad.serialize()
        result = ours.process_block(raw)
        assert result.status == BlockStatus.INVALID and result.reason == "bad-signet-blksig"
        assert not kernel.submit(raw, bad.hash)
        assert ours.tip.height == kernel.height == 9
        # The genuine block still connects on both.
        good = Block.from_bytes(raws[-1])
        assert ours.process_block(raws[-1]).status == BlockStatus.ACCEPTED
        assert kernel.submit(raws[-1], good.hash) and ours.tip.hash == good.hash
    finally:
        ours.close()
        kernel.close()
