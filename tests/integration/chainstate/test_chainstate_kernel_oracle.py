"""The 206-block Core fixture (and a longer chain with spends) end where Core's engine ends."""

from __future__ import annotations

import json
from pathlib import Path

from appliance.cli import main as cli_main
from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from protocols.bitcoin.block import Block
from tests.helpers.kernel import run_kernel
from tests.unit.chainstate.blocktools import build_chain, churn_chain, fixture_blocks, tip_of


def test_fixture_imports_and_matches_kernel(core_vectors: Path, tmp_path: Path):
    raw = [b.serialize() for b in fixture_blocks(core_vectors)]
    cs = Chainstate.open(tmp_path / "ours", REGTEST, script_threads=2)
    try:
        for blk in raw:
            assert cs.process_block(blk).status is BlockStatus.ACCEPTED
        stats = cs.utxo_stats()
        ours = (cs.height, cs.tip.hash, stats.count, stats.total_amount)
    finally:
        cs.close()
    kernel = run_kernel(raw, tmp_path / "kernel")
    assert all(kernel.accepted)
    assert ours == (206, kernel.tip_hash, kernel.utxos, kernel.total_amount)
    assert ours[2:] == (230, 887_500_000_000)


def test_churn_chain_matches_kernel(core_vectors: Path, tmp_path: Path):
    fx = [b.serialize() for b in fixture_blocks(core_vectors)]
    ext = fx + [b.serialize() for b in build_chain(tip_of(Block.from_bytes(fx[-1]), 206), 110)]
    blocks = ext + [b.serialize() for b in churn_chain(ext, 60)]
    chain_file = tmp_path / "chain.txt"
    chain_file.write_text("\n".join(b.hex() for b in blocks))
    kernel = run_kernel(blocks, tmp_path / "kernel")
    assert all(kernel.accepted)
    out_file = tmp_path / "out.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(
            [
                "chain",
                "import",
                "--chain",
                "regtest",
                "--datadir",
                str(tmp_path / "cli"),
                "--json",
                "-q",
                str(chain_file),
            ]
        )
    out_file.write_text(buf.getvalue())
    assert rc == 0
    out = json.loads(buf.getvalue())
    assert out["height"] == kernel.height == 376
    assert out["tip"] == kernel.tip_hash[::-1].hex()
    assert (out["utxos"], out["total_amount"]) == (kernel.utxos, kernel.total_amount)


def test_mainnet_alt_chain_matches_kernel(core_vectors: Path, tmp_path: Path):
    """2016 real-PoW mainnet blocks (difficulty 1, retarget at 2016): mainnet rules end to end."""
    from node.chain.params import MAINNET
    from tests.helpers import mainnet_alt
    from tests.helpers.kernel import KernelOracle

    blocks = list(mainnet_alt.blocks(core_vectors, MAINNET.genesis_hash, 2016))
    kernel = KernelOracle("mainnet", tmp_path / "kernel")
    try:
        for b in blocks:
            kernel.submit(b.serialize(), b.hash)
        kernel_tip = kernel.tip
    finally:
        kernel.close()
    cs = Chainstate.open(tmp_path / "ours", MAINNET, script_threads=1)
    try:
        for b in blocks:
            assert cs.process_block(b.serialize()).status is BlockStatus.ACCEPTED
        stats = cs.utxo_stats()
        assert cs.tip.hash == kernel_tip and cs.height == 2016
        assert (stats.count, stats.total_amount) == (2016, 2016 * 50 * 100_000_000)
    finally:
        cs.close()
