"""`blvm demo`: the product's main job on its embedded default, until `blvm up` exists.

Mines a regtest chain whose blocks carry real signed P2WPKH and P2TR spends,
validates and connects every block with our node (UTXO set, undo data, block
files), and asks Bitcoin Core's engine for its verdict on the same blocks.
No hardware, no network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from appliance.cli._output import emit
from node.chain.chainstate import BlockStatus, Chainstate
from node.chain.params import REGTEST
from node.mining.workload import COINBASE_MATURITY, RegtestWorkload

FANOUT_OUTPUTS = 200


def _run(args: argparse.Namespace) -> int:
    import pbk  # the oracle; imported here so `blvm --help` stays fast

    say = (lambda _line: None) if args.json else (lambda line: print(line, file=sys.stderr))
    tmp = None
    if args.datadir is None:
        tmp = tempfile.TemporaryDirectory(prefix="blvm-demo-")
        datadir = Path(tmp.name)
    else:
        datadir = Path(args.datadir)
        if (datadir / "node").exists():
            print(
                f"error: {datadir} already holds a demo chain; pick an empty --datadir",
                file=sys.stderr,
            )
            return 2
    try:
        node = Chainstate.open(datadir / "node", REGTEST, prune_mib=0)
        kernel = pbk.load_chainman(datadir / "kernel", pbk.ChainType.REGTEST)
        w = RegtestWorkload(b"blvm-demo")
        say(f"regtest chain in {datadir}")
        plan = [(0, 1, 1)] * (COINBASE_MATURITY + 1)
        plan.append((4, 1, FANOUT_OUTPUTS))
        plan += [(args.inputs_per_block, 2, 2)] * args.spend_blocks
        inputs = 0
        agree = 0
        started = time.perf_counter()
        for height, (n_inputs, per_tx, outs) in enumerate(plan, start=1):
            block = w.next_block(n_inputs, inputs_per_tx=per_tx, outputs_per_tx=outs)
            raw = block.serialize()
            result = node.process_block(raw)
            if result.status != BlockStatus.ACCEPTED or node.tip.hash != block.hash:
                print(f"error: our node rejected block {height}: {result.reason}", file=sys.stderr)
                return 1
            kernel.process_block(pbk.Block(raw))
            active = kernel.get_active_chain()
            agree += bytes(active.block_tree_entries[active.height].block_hash) == block.hash
            inputs += sum(len(tx.inputs) for tx in block.txs[1:])
            if height % 25 == 0 or height == len(plan):
                say(
                    f"height {height:4d}  txs {len(block.txs):4d}  signed inputs so far {inputs:6d}"
                    f"  kernel agrees on {agree}/{height}"
                )
        elapsed = time.perf_counter() - started
        stats = node.utxo_stats()
        node.flush()
        summary = {
            "chain": "regtest",
            "height": node.tip.height,
            "tip": node.tip.hash_hex,
            "utxos": stats.count,
            "total_amount": stats.total_amount,
            "signed_inputs_validated": inputs,
            "kernel_agrees": agree == len(plan),
            "seconds": round(elapsed, 2),
        }
        if tmp is None:
            summary["datadir"] = str(datadir)
        node.close()
        del kernel
        emit(summary, args.json)
        return 0 if summary["kernel_agrees"] else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="mine and validate a regtest chain with signed spends (no hardware, no network)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--datadir", metavar="DIR", help="keep the chain here (default: a temporary directory)"
    )
    p.add_argument(
        "--spend-blocks",
        type=int,
        default=20,
        metavar="N",
        help="blocks full of spends (default 20)",
    )
    p.add_argument(
        "--inputs-per-block",
        type=int,
        default=400,
        metavar="N",
        help="signed inputs per spend block (default 400)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
