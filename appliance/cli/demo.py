"""`blvm demo`: the product's main job on its embedded default, until `blvm up` exists.

Mines a regtest chain whose blocks carry real signed P2WPKH and P2TR spends,
validates and connects every block with our node (UTXO set, undo data, block
files), and asks Bitcoin Core's engine for its verdict on the same blocks. Then
it brings up a simulated BM13xx board on a pseudo-terminal with the real ASIC
driver and mines a few more blocks from the node's templates on its chips.
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
        if args.board_blocks:
            say(
                f"mining {args.board_blocks} blocks on a simulated {args.model} board "
                f"({args.chips} chips) through the ASIC driver"
            )
            found = _mine_on_sim_board(node, datadir, args, say)
            for block in found:
                kernel.process_block(pbk.Block(block.serialize()))
            active = kernel.get_active_chain()
            agree += len(found) * (
                bytes(active.block_tree_entries[active.height].block_hash) == node.tip.hash
            )
            plan += [None] * len(found)
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


def _mine_on_sim_board(node: Chainstate, datadir: Path, args: argparse.Namespace, say) -> list:
    """Start a simulated board on a pty, bring it up with the real driver, mine blocks."""
    import threading

    from appliance.miningos.solo import SoloAsicMiner
    from drivers.asic.driver import AsicDriver
    from drivers.sim.board import SimBoardConfig
    from drivers.sim.control import ControlClient
    from drivers.sim.pty_board import PtyBoard
    from drivers.transport.serial import SerialTransport

    # Simulation settings: a CPU hash budget, and a ticket difficulty far below 1 so
    # the chips report a nonce every second or so (every one of them meets regtest's target).
    difficulty = 2.0**-16
    config = SimBoardConfig(
        model=args.model,
        chips=args.chips,
        hashrate_hps=100_000.0,
        sim_ticket_difficulty=difficulty,
        voltage_domains=args.chips,
        seed=1,
    )
    board = PtyBoard(config, board_id="demo", base_dir=datadir / "sim", publish=False)
    board.open()
    stop = threading.Event()
    thread = threading.Thread(target=board.run, kwargs={"should_stop": stop.is_set}, daemon=True)
    thread.start()

    def pulse_reset() -> None:
        with ControlClient(board.control_path) as control:
            control.checked({"cmd": "reset"})

    transport = SerialTransport(board.link, reset_hook=pulse_reset)
    try:
        driver = AsicDriver(
            transport, args.model, verify_difficulty=difficulty, frequency_mhz=100.0
        )
        chain = driver.init(chip_count_expected=args.chips)
        say(
            f"  {len(chain)} chips enumerated at addresses {[c.address for c in chain.chips]}, "
            f"UART at {driver.baud} baud"
        )
        miner = SoloAsicMiner(node, driver, b"\x51")
        found = []
        for _ in range(args.board_blocks):
            result = miner.mine_block()
            found.append(result.block)
            say(
                f"  height {node.tip.height}: chip {result.chip_index} found {result.block.hash_hex[:16]}… "
                f"in {result.seconds:.1f} s ({result.nonces_seen} nonces re-hashed on the host)"
            )
        return found
    finally:
        transport.close()
        stop.set()
        thread.join(5)
        board.close()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="regtest chain with signed spends validated by our node, then mined on a simulated ASIC board",
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
    p.add_argument(
        "--board-blocks",
        type=int,
        default=3,
        metavar="N",
        help="then mine N blocks on a simulated ASIC board (default 3; 0 skips)",
    )
    p.add_argument(
        "--model",
        default="BM1370",
        choices=("BM1366", "BM1368", "BM1370", "BM1397"),
        help="simulated chip model (default BM1370)",
    )
    p.add_argument("--chips", type=int, default=4, metavar="N", help="simulated chips (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)
