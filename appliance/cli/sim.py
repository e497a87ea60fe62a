"""``blvm sim``: run a simulated mining board on a pty, and poke running ones.

blvm sim --chips 4 --model BM1370            # run in the foreground, print port + status
blvm sim list                                # running simulated boards
blvm sim status [--board ID]
blvm sim fault fan-stall [--off] [--board ID]
blvm sim fault chip-dropout --value 2
blvm sim clear | reset
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from appliance.cli._output import emit
from drivers.sim.board import SimBoardConfig
from drivers.sim.control import ControlClient
from drivers.sim.discovery import SimBoardRecord, list_sim_boards
from drivers.sim.errors import SimError
from drivers.sim.faults import Fault
from drivers.sim.models import MODELS

AUTO_SHARES_PER_S = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sim",
        help="run or control a simulated mining board (pty + simulated I2C)",
        description=(
            "Run a simulated BM13xx board on a pseudo-terminal that really hashes, or control "
            "a running one. Without a subcommand the board runs in the foreground until Ctrl-C."
        ),
    )
    p.add_argument("--model", default="BM1370", choices=sorted(MODELS), help="chip model")
    p.add_argument("--chips", type=int, default=1, help="chips on the chain (default 1)")
    p.add_argument(
        "--hashrate-hps",
        type=float,
        default=100_000.0,
        help="simulation setting: real hashes per second of CPU the chain may spend "
        "(default 100000, about a third of one core)",
    )
    p.add_argument(
        "--sim-ticket-difficulty",
        default="auto",
        help="simulation setting: difficulty chips report nonces at, may be below 1; "
        "'auto' gives about one nonce a second for the chain, 'off' obeys the ticket mask "
        "register like silicon (default auto)",
    )
    p.add_argument("--id", dest="board_id", help="board id for discovery (default sim-<pid>)")
    p.add_argument("--seed", type=int, help="seed for fault and error randomness")
    p.add_argument(
        "--max-cpu", type=float, default=0.5, help="cap on the CPU share spent hashing (0.05-1)"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--status-interval", type=float, default=2.0, help="seconds between status")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=_run)

    sub = p.add_subparsers(dest="sim_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="list running simulated boards")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)

    st = sub.add_parser("status", help="show a running board's status")
    _board_arg(st)
    st.set_defaults(func=_status)

    fault = sub.add_parser(
        "fault",
        help="inject or clear a fault on a running board",
        description="Faults: " + ", ".join(f.value for f in Fault),
    )
    fault.add_argument("name", choices=[f.value for f in Fault], help="fault to inject")
    fault.add_argument("--off", action="store_true", help="clear this fault instead")
    fault.add_argument(
        "--value",
        type=float,
        help="rate for crc/drop (0-1), chip index for chip-dropout, seconds for unplug",
    )
    _board_arg(fault)
    fault.set_defaults(func=_fault)

    clear = sub.add_parser("clear", help="clear every fault on a running board")
    _board_arg(clear)
    clear.set_defaults(func=_simple("clear"))

    reset = sub.add_parser("reset", help="pulse the chips' reset line on a running board")
    _board_arg(reset)
    reset.set_defaults(func=_simple("reset"))


def _board_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", help="board id (default: the only running board)")
    p.add_argument("--json", action="store_true", help="print JSON")


def ticket_difficulty_setting(text: str, hashrate_hps: float) -> float | None:
    """Parse ``--sim-ticket-difficulty``: a number, 'auto' or 'off'."""
    if text == "off":
        return None
    if text == "auto":
        return max(hashrate_hps, 1.0) / (2**32 * AUTO_SHARES_PER_S)
    value = float(text)
    if value <= 0:
        raise ValueError("--sim-ticket-difficulty must be > 0")
    return value


def _run(args: argparse.Namespace) -> int:
    from drivers.sim.pty_board import PtyBoard

    try:
        difficulty = ticket_difficulty_setting(args.sim_ticket_difficulty, args.hashrate_hps)
        config = SimBoardConfig(
            model=args.model,
            chips=args.chips,
            hashrate_hps=args.hashrate_hps,
            sim_ticket_difficulty=difficulty,
            seed=args.seed,
        )
        board = PtyBoard(config, board_id=args.board_id, max_cpu_fraction=args.max_cpu)
        board.open()
    except (SimError, ValueError) as exc:
        emit({"ok": False, "error": str(exc)}, args.json, f"error: {exc}")
        return 2
    stop = {"flag": False}

    def _stop(*_: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    record = board.record()
    ready = {"event": "ready", **_record_dict(record)}
    emit(
        ready,
        args.json,
        f"simulated {args.model} x{args.chips} on {record.port}\n"
        f"  stable link: {record.link}\n  control:     {record.control}\n"
        f"  sim ticket difficulty: {difficulty if difficulty is not None else 'register'}; "
        f"hash budget {args.hashrate_hps:.0f} H/s",
    )

    def on_status(status: dict[str, Any]) -> None:
        emit({"event": "status", **status}, args.json, _status_line(status))

    try:
        board.run(
            duration=args.duration,
            on_status=on_status,
            status_interval=args.status_interval,
            should_stop=lambda: stop["flag"],
        )
    finally:
        board.close()
    return 0


def _status_line(s: dict[str, Any]) -> str:
    temps = "/".join(f"{t:.1f}" for t in s["chip_temp_c"])
    mhz = "/".join(f"{f:.0f}" for f in s["chip_mhz"])
    return (
        f"{s['port'] or 'UNPLUGGED'} {s['baud']} baud (host {s['host_baud']}) | "
        f"{'on' if s['powered'] else 'OFF'} {s['vcore_v']:.3f} V {s['power_w']:.1f} W | "
        f"{mhz} MHz | {temps} C | fan {s['fan_rpm']} rpm | jobs {s['jobs_rx']} "
        f"nonces {s['nonces_tx']} hw {s['hw_errors_tx']} | "
        f"real {s.get('real_hashrate_hps', 0)} H/s"
    )


def _record_dict(record: SimBoardRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "port": record.port,
        "link": record.link,
        "control": record.control,
        "model": record.model,
        "chips": record.chips,
        "pid": record.pid,
        "hashrate_hps": record.hashrate_hps,
        "sim_ticket_difficulty": record.sim_ticket_difficulty,
        "baud": record.baud,
    }


def _list(args: argparse.Namespace) -> int:
    boards = list_sim_boards()
    result = {"boards": [_record_dict(b) for b in boards]}
    human = "\n".join(f"{b.id}: {b.model} x{b.chips} on {b.port} (pid {b.pid})" for b in boards)
    emit(result, args.json, human or "no simulated boards running (start one with `blvm sim`)")
    return 0


def _pick(args: argparse.Namespace) -> SimBoardRecord:
    boards = list_sim_boards()
    if args.board:
        for b in boards:
            if b.id == args.board:
                return b
        raise SimError(f"no running simulated board {args.board!r}; see `blvm sim list`")
    if not boards:
        raise SimError("no simulated board running; start one with `blvm sim`")
    if len(boards) > 1:
        ids = ", ".join(b.id for b in boards)
        raise SimError(f"several simulated boards run ({ids}); choose one with --board")
    return boards[0]


def _control(args: argparse.Namespace, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        record = _pick(args)
        with ControlClient(record.control) as client:
            return 0, client.checked(payload)
    except SimError as exc:
        return 1, {"ok": False, "error": str(exc)}


def _status(args: argparse.Namespace) -> int:
    rc, response = _control(args, {"cmd": "status"})
    if rc:
        emit(response, args.json, f"error: {response['error']}")
        return rc
    status = response["status"]
    emit(status, args.json, _status_line(status))
    return 0


def _fault(args: argparse.Namespace) -> int:
    payload = {"cmd": "fault", "name": args.name, "on": not args.off, "value": args.value}
    rc, response = _control(args, payload)
    human = (
        f"error: {response['error']}"
        if rc
        else f"fault {args.name} {'cleared' if args.off else 'injected'}"
    )
    emit(response, args.json, human)
    return rc


def _simple(cmd: str):
    def handler(args: argparse.Namespace) -> int:
        rc, response = _control(args, {"cmd": cmd})
        emit(response, args.json, f"error: {response['error']}" if rc else f"{cmd}: done")
        return rc

    return handler
