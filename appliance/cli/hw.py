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

    boards = sub.add_parser(
        "boards",
        help="list the board definitions (chips, voltage domains, parts, safe limits)",
        description="List every board definition this build knows, with its safe limits.",
    )
    boards.add_argument("--json", action="store_true", help="print one JSON object")
    boards.set_defaults(func=_boards)

    sensors = sub.add_parser(
        "sensors",
        help="read a board's fan, chip temperature and power-stage sensors (read-only)",
        description=(
            "Read the EMC2101 and TPS546 a board definition lists, on a Linux I2C bus or on "
            "a running simulated board. Nothing is written. Exit status 1 if any sensor "
            "failed or reported an implausible value."
        ),
    )
    sensors.add_argument("--json", action="store_true", help="print one JSON object")
    source = sensors.add_mutually_exclusive_group(required=True)
    source.add_argument("--i2c-bus", type=int, metavar="N", help="Linux /dev/i2c-N")
    source.add_argument(
        "--sim",
        nargs="?",
        const="",
        metavar="ID",
        help="a running simulated board (its id; optional when only one runs)",
    )
    sensors.add_argument(
        "--board", metavar="NAME", help="board definition (default: from the sim, else required)"
    )
    sensors.set_defaults(func=_sensors)


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


def _boards(args: argparse.Namespace) -> int:
    from drivers.boards import BOARDS

    rows = []
    for b in BOARDS:
        lim = b.limits
        rows.append(
            {
                "name": b.name,
                "description": b.description,
                "chip": b.model,
                "chips": b.chip_count,
                "domains": b.domains,
                "transport": b.transport.value,
                "usb_id": str(b.usb_id) if b.usb_id else None,
                "fan": f"{b.fan.kind}@0x{b.fan.address:02X}" if b.fan else None,
                "power": f"{b.power.kind}@0x{b.power.address:02X}" if b.power else None,
                "default_freq_mhz": b.default_freq_mhz,
                "default_vcore_mv": b.default_vcore_mv,
                "freq_mhz": [lim.freq_min_mhz, lim.freq_max_mhz],
                "vcore_mv": [lim.vcore_min_mv, lim.vcore_max_mv],
                "max_chip_temp_c": lim.max_chip_temp_c,
                "max_vr_temp_c": lim.max_vr_temp_c,
                "expected_ghs": round(b.expected_ghs(), 1),
            }
        )
    human = "\n".join(
        f"{r['name']:<14} {r['chips']} x {r['chip']:<6} {r['domains']} domain(s)  "
        f"{r['default_freq_mhz']:g} MHz {r['default_vcore_mv']} mV  "
        f"~{r['expected_ghs']:g} GH/s  {r['description']}"
        for r in rows
    )
    emit({"boards": rows}, args.json, human)
    return 0


def _sensors(args: argparse.Namespace) -> int:
    from drivers.boards import BoardError, get_board, identify
    from drivers.boards.sensors import read_board_sensors, sensor_errors
    from drivers.i2c.bus import I2CError

    bus = None
    try:
        if args.sim is not None:
            from drivers.sim.control import RemoteI2CBus
            from drivers.sim.discovery import list_sim_boards

            sims = list_sim_boards()
            if args.sim:
                sims = [r for r in sims if r.id == args.sim]
            if len(sims) != 1:
                found = ", ".join(r.id for r in list_sim_boards()) or "none"
                log.error("need exactly one matching simulated board (running: %s)", found)
                return 2
            record = sims[0]
            board = get_board(args.board) if args.board else identify(record.model, record.chips)
            bus = RemoteI2CBus(record.control)
        else:
            if not args.board:
                log.error("--board NAME is required with --i2c-bus (see: blvm hw boards)")
                return 2
            from drivers.i2c.linux import LinuxI2CBus

            board = get_board(args.board)
            bus = LinuxI2CBus(args.i2c_bus)
        reading = read_board_sensors(board, bus)
    except BoardError as exc:
        log.error("%s", exc)
        return 2
    except (OSError, I2CError) as exc:
        log.error("cannot reach the I2C bus: %s", exc)
        return 2
    finally:
        if bus is not None:
            bus.close()
    errors = sensor_errors(reading)
    reading["errors"] = errors
    emit(reading, args.json, _sensors_human(reading))
    return 1 if errors else 0


def _sensors_human(r: dict) -> str:
    def fmt(v: object) -> str:
        return f"ERROR {v['error']}" if isinstance(v, dict) else str(v)

    lines = [f"board: {r['board']}"]
    for part in ("fan", "power"):
        for key, value in r.get(part, {}).items():
            lines.append(f"{part}.{key}: {fmt(value)}")
    return "\n".join(lines)
