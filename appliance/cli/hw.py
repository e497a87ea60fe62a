"""``blvm hw``: look at the mining hardware attached to this host."""

from __future__ import annotations

import argparse
import logging

from appliance.cli._output import emit

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    hw = subparsers.add_parser("hw", help="mining hardware: find boards", description=__doc__)
    sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND", required=True)
    scan = sub.add_parser(
        "scan",
        help="list boards: USB bridges, serial ports that answer, running simulated boards",
        description=(
            "Find BM13xx boards. USB-UART bridges are found by VID/PID; serial ports "
            "(/dev/ttyUSB*, /dev/ttyACM*, /dev/ttyS*) and simulated boards are probed with the "
            "chip-id read at 115200 baud, the only bytes ever written. Ports another process "
            "has open are reported as busy and left alone."
        ),
    )
    scan.add_argument("--json", action="store_true", help="print one JSON object")
    scan.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PATH",
        help="also probe this serial port or pty (repeatable)",
    )
    scan.add_argument("--no-usb", action="store_true", help="skip the USB bus scan")
    scan.add_argument("--no-serial", action="store_true", help="skip the OS serial port list")
    scan.add_argument("--no-sim", action="store_true", help="skip running simulated boards")
    scan.add_argument(
        "--timeout",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds to wait for chips to answer per port (default 0.5)",
    )
    scan.set_defaults(func=_scan)


def _scan(args: argparse.Namespace) -> int:
    from drivers.transport.discovery import scan

    if args.timeout <= 0:
        log.error("--timeout must be positive")
        return 2
    result = scan(
        usb=not args.no_usb,
        serial_ports=not args.no_serial,
        sim=not args.no_sim,
        extra_ports=args.port,
        timeout=args.timeout,
    )
    data = result.to_dict()
    data["found"] = sum(1 for b in result.boards if b.chip_count > 0)
    emit(data, args.json, _human(data))
    return 0


def _human(data: dict) -> str:
    rows = [("SOURCE", "PORT", "BRIDGE", "CHIP", "N", "BOARD", "STATUS")]
    for b in data["boards"]:
        rows.append(
            (
                b["source"],
                b["port"],
                b["bridge"] or "-",
                b["chip_model"] or "-",
                str(b["chip_count"]),
                b["board"] or "-",
                b["status"] + (f" ({b['detail']})" if b["detail"] and b["status"] != "ok" else ""),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    ]
    if len(rows) == 1:
        lines = ["no ports or boards found"]
    lines += [f"note: {n}" for n in data["notes"]]
    lines.append(f"{data['found']} board(s) with chips answering")
    return "\n".join(lines)
