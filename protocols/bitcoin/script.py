"""Bitcoin Script: opcodes, op iteration, minimal pushes, output templates, sigop counting.

Behaviour follows Bitcoin Core (``script/script.cpp``, ``script/solver.cpp``,
``consensus/tx_verify.cpp``) where consensus depends on it: sigop counts are
consensus-critical, so the quirks (a truncated push ends the count, an
unknown multisig key count counts 20) are kept on purpose.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocols.bitcoin.errors import BitcoinProtocolError

if TYPE_CHECKING:
    from protocols.bitcoin.tx import Tx, TxOut


class ScriptError(BitcoinProtocolError):
    """A script that cannot be read or built (truncated push, bad template argument)."""


class Opcode(enum.IntEnum):
    """Every opcode byte with a name in Bitcoin Core; aliases follow their canonical name."""

    OP_0 = 0x00
    OP_FALSE = 0x00
    OP_PUSHDATA1 = 0x4C
    OP_PUSHDATA2 = 0x4D
    OP_PUSHDATA4 = 0x4E
    OP_1NEGATE = 0x4F
    OP_RESERVED = 0x50
    OP_1 = 0x51
    OP_TRUE = 0x51
    OP_2 = 0x52
    OP_3 = 0x53
    OP_4 = 0x54
    OP_5 = 0x55
    OP_6 = 0x56
    OP_7 = 0x57
    OP_8 = 0x58
    OP_9 = 0x59
    OP_10 = 0x5A
    OP_11 = 0x5B
    OP_12 = 0x5C
    OP_13 = 0x5D
    OP_14 = 0x5E
    OP_15 = 0x5F
    OP_16 = 0x60
    # control
    OP_NOP = 0x61
    OP_VER = 0x62
    OP_IF = 0x63
    OP_NOTIF = 0x64
    OP_VERIF = 0x65
    OP_VERNOTIF = 0x66
    OP_ELSE = 0x67
    OP_ENDIF = 0x68
    OP_VERIFY = 0x69
    OP_RETURN = 0x6A
    # stack
    OP_TOALTSTACK = 0x6B
    OP_FROMALTSTACK = 0x6C
    OP_2DROP = 0x6D
    OP_2DUP = 0x6E
    OP_3DUP = 0x6F
    OP_2OVER = 0x70
    OP_2ROT = 0x71
    OP_2SWAP = 0x72
    OP_IFDUP = 0x73
    OP_DEPTH = 0x74
    OP_DROP = 0x75
    OP_DUP = 0x76
    OP_NIP = 0x77
    OP_OVER = 0x78
    OP_PICK = 0x79
    OP_ROLL = 0x7A
    OP_ROT = 0x7B
    OP_SWAP = 0x7C
    OP_TUCK = 0x7D
    # splice
    OP_CAT = 0x7E
    OP_SUBSTR = 0x7F
    OP_LEFT = 0x80
    OP_RIGHT = 0x81
    OP_SIZE = 0x82
    # bit logic
    OP_INVERT = 0x83
    OP_AND = 0x84
    OP_OR = 0x85
    OP_XOR = 0x86
    OP_EQUAL = 0x87
    OP_EQUALVERIFY = 0x88
    OP_RESERVED1 = 0x89
    OP_RESERVED2 = 0x8A
    # numeric
    OP_1ADD = 0x8B
    OP_1SUB = 0x8C
    OP_2MUL = 0x8D
    OP_2DIV = 0x8E
    OP_NEGATE = 0x8F
    OP_ABS = 0x90
    OP_NOT = 0x91
    OP_0NOTEQUAL = 0x92
    OP_ADD = 0x93
    OP_SUB = 0x94
    OP_MUL = 0x95
    OP_DIV = 0x96
    OP_MOD = 0x97
    OP_LSHIFT = 0x98
    OP_RSHIFT = 0x99
    OP_BOOLAND = 0x9A
    OP_BOOLOR = 0x9B
    OP_NUMEQUAL = 0x9C
    OP_NUMEQUALVERIFY = 0x9D
    OP_NUMNOTEQUAL = 0x9E
    OP_LESSTHAN = 0x9F
    OP_GREATERTHAN = 0xA0
    OP_LESSTHANOREQUAL = 0xA1
    OP_GREATERTHANOREQUAL = 0xA2
    OP_MIN = 0xA3
    OP_MAX = 0xA4
    OP_WITHIN = 0xA5
    # crypto
    OP_RIPEMD160 = 0xA6
    OP_SHA1 = 0xA7
    OP_SHA256 = 0xA8
    OP_HASH160 = 0xA9
    OP_HASH256 = 0xAA
    OP_CODESEPARATOR = 0xAB
    OP_CHECKSIG = 0xAC
    OP_CHECKSIGVERIFY = 0xAD
    OP_CHECKMULTISIG = 0xAE
    OP_CHECKMULTISIGVERIFY = 0xAF
    # expansion
    OP_NOP1 = 0xB0
    OP_CHECKLOCKTIMEVERIFY = 0xB1
    OP_NOP2 = 0xB1
    OP_CHECKSEQUENCEVERIFY = 0xB2
    OP_NOP3 = 0xB2
    OP_NOP4 = 0xB3
    OP_NOP5 = 0xB4
    OP_NOP6 = 0xB5
    OP_NOP7 = 0xB6
    OP_NOP8 = 0xB7
    OP_NOP9 = 0xB8
    OP_NOP10 = 0xB9
    # tapscript
    OP_CHECKSIGADD = 0xBA
    OP_INVALIDOPCODE = 0xFF


globals().update(Opcode.__members__)  # OP_DUP etc. importable from this module

MAX_OPCODE = Opcode.OP_CHECKSIGADD
MAX_SCRIPT_ELEMENT_SIZE = 520
MAX_SCRIPT_SIZE = 10_000
MAX_OPS_PER_SCRIPT = 201
MAX_PUBKEYS_PER_MULTISIG = 20
MAX_PUBKEYS_PER_MULTI_A = 999
WITNESS_SCALE_FACTOR = 4
ANCHOR_PROGRAM = b"\x4e\x73"  # pay-to-anchor: OP_1 <0x4e73>


class ScriptFlag(enum.IntFlag):
    """Bitcoin Core's SCRIPT_VERIFY_* bits (same values, names without the prefix)."""

    NONE = 0
    P2SH = 1 << 0
    STRICTENC = 1 << 1
    DERSIG = 1 << 2
    LOW_S = 1 << 3
    NULLDUMMY = 1 << 4
    SIGPUSHONLY = 1 << 5
    MINIMALDATA = 1 << 6
    DISCOURAGE_UPGRADABLE_NOPS = 1 << 7
    CLEANSTACK = 1 << 8
    CHECKLOCKTIMEVERIFY = 1 << 9
    CHECKSEQUENCEVERIFY = 1 << 10
    WITNESS = 1 << 11
    DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM = 1 << 12
    MINIMALIF = 1 << 13
    NULLFAIL = 1 << 14
    WITNESS_PUBKEYTYPE = 1 << 15
    CONST_SCRIPTCODE = 1 << 16
    TAPROOT = 1 << 17
    DISCOURAGE_UPGRADABLE_TAPROOT_VERSION = 1 << 18
    DISCOURAGE_OP_SUCCESS = 1 << 19
    DISCOURAGE_UPGRADABLE_PUBKEYTYPE = 1 << 20


def parse_flags(text: str) -> ScriptFlag:
    """Parse a comma-separated flag list as in script_tests.json ("P2SH,WITNESS", "NONE", "")."""
    flags = ScriptFlag.NONE
    for word in text.split(","):
        word = word.strip()
        if not word:
            continue
        try:
            flags |= ScriptFlag[word]
        except KeyError:
            raise ScriptError(f"unknown script verify flag {word!r}") from None
    return flags


# -- names --------------------------------------------------------------------------


def op_name(op: int, prefix: bool = True) -> str:
    """Name as Core's GetOpName: "0", "-1", "1".."16" for small numbers, else "OP_X".

    With ``prefix=False`` the "OP_" is dropped ("DUP"), the form script_tests.json uses.
    Bytes without a name give "OP_UNKNOWN" (or "UNKNOWN").
    """
    if op == 0:
        return "0"
    if op == 0x4F:
        return "-1"
    if 0x51 <= op <= 0x60:
        return str(op - 0x50)
    name = "OP_UNKNOWN" if op < 76 or 186 < op < 255 or op > 255 or op < 0 else Opcode(op).name
    return name if prefix else name[3:]


# -- reading ------------------------------------------------------------------------

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from


@dataclass(frozen=True, slots=True)
class ScriptOp:
    """One decoded operation: ``data`` is the pushed bytes for push opcodes, else None."""

    opcode: int
    data: bytes | None
    offset: int  # position of the opcode byte in the script


def _read_op(script: bytes, pos: int) -> tuple[int, bytes | None, int]:
    """Decode the op at ``pos``: (opcode, data, next position); raises ScriptError if cut."""
    op = script[pos]
    pos += 1
    if op > 0x4E:
        return op, None, pos
    if op < 0x4C:
        size = op
    elif op == 0x4C:
        if pos + 1 > len(script):
            raise ScriptError("truncated OP_PUSHDATA1 length")
        size = script[pos]
        pos += 1
    elif op == 0x4D:
        if pos + 2 > len(script):
            raise ScriptError("truncated OP_PUSHDATA2 length")
        size = _U16(script, pos)[0]
        pos += 2
    else:
        if pos + 4 > len(script):
            raise ScriptError("truncated OP_PUSHDATA4 length")
        size = _U32(script, pos)[0]
        pos += 4
    end = pos + size
    if end > len(script):
        raise ScriptError(
            f"push of {size} bytes at offset {pos - 1} runs past the end of the script"
        )
    return op, bytes(script[pos:end]), end


def iter_script(script: bytes) -> Iterator[ScriptOp]:
    """Yield each op; raises :class:`ScriptError` on a truncated push (after the good ops)."""
    pos = 0
    n = len(script)
    while pos < n:
        start = pos
        op, data, pos = _read_op(script, pos)
        yield ScriptOp(op, data, start)


def script_ops(script: bytes) -> list[tuple[int, bytes | None]]:
    """All ops as (opcode, data) pairs; raises :class:`ScriptError` if the script is cut."""
    return [(op.opcode, op.data) for op in iter_script(script)]


def _ops_until_error(script: bytes) -> Iterator[tuple[int, bytes | None]]:
    """Like :func:`iter_script` but stops silently at a bad push, as Core's loops do."""
    pos = 0
    n = len(script)
    while pos < n:
        try:
            op, data, pos = _read_op(script, pos)
        except ScriptError:
            return
        yield op, data


def is_valid_script(script: bytes) -> bool:
    """True if every push is complete (Core's ``HasValidOps`` minus the opcode range check)."""
    try:
        for _ in iter_script(script):
            pass
    except ScriptError:
        return False
    return True


def is_push_only(script: bytes) -> bool:
    """Core's IsPushOnly: every op is a push or OP_1NEGATE..OP_16 (OP_RESERVED counts too)."""
    pos = 0
    n = len(script)
    while pos < n:
        try:
            op, _, pos = _read_op(script, pos)
        except ScriptError:
            return False
        if op > 0x60:
            return False
    return True


# -- numbers ------------------------------------------------------------------------


def encode_script_num(n: int) -> bytes:
    """CScriptNum serialization: minimal little-endian sign-magnitude."""
    if n == 0:
        return b""
    neg = n < 0
    mag = -n if neg else n
    out = bytearray()
    while mag:
        out.append(mag & 0xFF)
        mag >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0x00)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes, max_size: int = 4, require_minimal: bool = False) -> int:
    """Inverse of :func:`encode_script_num` with Core's size and minimality checks."""
    if len(data) > max_size:
        raise ScriptError(f"script number longer than {max_size} bytes")
    minimal = not data or data[-1] & 0x7F or (len(data) > 1 and data[-2] & 0x80)
    if require_minimal and not minimal:
        raise ScriptError("non-minimally encoded script number")
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def small_int_opcode(n: int) -> int:
    """OP_0..OP_16 for 0..16."""
    if not 0 <= n <= 16:
        raise ScriptError(f"{n} has no small-integer opcode")
    return 0 if n == 0 else 0x50 + n


def decode_small_int(op: int) -> int:
    """Core's DecodeOP_N: OP_0..OP_16 → 0..16."""
    if op == 0:
        return 0
    if 0x51 <= op <= 0x60:
        return op - 0x50
    raise ScriptError(f"opcode 0x{op:02x} is not OP_0..OP_16")


# -- building -----------------------------------------------------------------------


def push_data(data: bytes, minimal: bool = True) -> bytes:
    """Script fragment pushing ``data``.

    ``minimal=True`` follows Core's CheckMinimalPush (empty → OP_0, one byte 1..16 →
    OP_N, 0x81 → OP_1NEGATE); ``minimal=False`` is CScript's ``<< vector`` (size-based
    opcode only), which the ASM parser and signature pushes use.
    """
    n = len(data)
    if minimal:
        if n == 0:
            return b"\x00"
        if n == 1:
            if 1 <= data[0] <= 16:
                return bytes((0x50 + data[0],))
            if data[0] == 0x81:
                return b"\x4f"
    if n < 0x4C:
        return bytes((n,)) + data
    if n <= 0xFF:
        return b"\x4c" + bytes((n,)) + data
    if n <= 0xFFFF:
        return b"\x4d" + n.to_bytes(2, "little") + data
    if n <= 0xFFFFFFFF:
        return b"\x4e" + n.to_bytes(4, "little") + data
    raise ScriptError("push too large")


def push_int(n: int) -> bytes:
    """Script fragment pushing integer ``n`` as CScript's push_int64 does."""
    if n == -1 or 1 <= n <= 16:
        return bytes((n + 0x50,))
    if n == 0:
        return b"\x00"
    return push_data(encode_script_num(n), minimal=False)


def build_script(items: Iterable[int | bytes | bytearray]) -> bytes:
    """Assemble a script: ``int`` items are opcodes, ``bytes`` items are minimal pushes,
    :class:`Raw` items are inserted as they are (e.g. ``Raw(push_int(500))`` for a number).
    """
    out = bytearray()
    for item in items:
        if isinstance(item, Raw):
            out += item.data
        elif isinstance(item, (bytes, bytearray)):
            out += push_data(bytes(item))
        elif isinstance(item, int):
            if not 0 <= item <= 0xFF:
                raise ScriptError(f"opcode {item} out of range")
            out.append(item)
        else:
            raise ScriptError(f"cannot put {type(item).__name__} in a script")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes inserted into :func:`build_script` output as they are (not pushed)."""

    data: bytes


# -- templates ------------------------------------------------------------------------


class ScriptType(enum.StrEnum):
    """Core's TxoutType, with the names ``GetTxnOutputType`` prints."""

    NONSTANDARD = "nonstandard"
    ANCHOR = "anchor"
    PUBKEY = "pubkey"
    PUBKEYHASH = "pubkeyhash"
    SCRIPTHASH = "scripthash"
    MULTISIG = "multisig"
    NULL_DATA = "nulldata"
    WITNESS_V0_KEYHASH = "witness_v0_keyhash"
    WITNESS_V0_SCRIPTHASH = "witness_v0_scripthash"
    WITNESS_V1_TAPROOT = "witness_v1_taproot"
    WITNESS_UNKNOWN = "witness_unknown"


def pubkey_size_ok(key: bytes) -> bool:
    """Core's CPubKey::ValidSize: header byte decides 33 or 65 bytes."""
    if not key:
        return False
    h = key[0]
    if h in (2, 3):
        return len(key) == 33
    if h in (4, 6, 7):
        return len(key) == 65
    return False


def is_p2sh(script: bytes) -> bool:
    return len(script) == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87


def is_p2pkh(script: bytes) -> bool:
    return (
        len(script) == 25
        and script[:3] == b"\x76\xa9\x14"
        and script[23] == 0x88
        and script[24] == 0xAC
    )


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) if ``script`` is a witness program (Core's IsWitnessProgram)."""
    n = len(script)
    if n < 4 or n > 42:
        return None
    v = script[0]
    if v != 0 and not 0x51 <= v <= 0x60:
        return None
    if script[1] + 2 != n:
        return None
    return (0 if v == 0 else v - 0x50), bytes(script[2:])


def is_witness_program(script: bytes) -> bool:
    return witness_program(script) is not None


def is_unspendable(script: bytes) -> bool:
    """Core's IsUnspendable: OP_RETURN first, or larger than MAX_SCRIPT_SIZE."""
    return (len(script) > 0 and script[0] == 0x6A) or len(script) > MAX_SCRIPT_SIZE


def _script_number(op: int, data: bytes | None, lo: int, hi: int) -> int | None:
    """Core's GetScriptNumber (solver.cpp): small int opcode or minimal numeric push."""
    if 0x51 <= op <= 0x60 or op == 0:
        n = decode_small_int(op)
    elif data is not None:
        if push_data(data) != _encode_push_like(op, data):
            return None  # not a minimal push
        try:
            n = decode_script_num(data, 4, require_minimal=True)
        except ScriptError:
            return None
    else:
        return None
    return n if lo <= n <= hi else None


def _encode_push_like(op: int, data: bytes) -> bytes:
    """Re-encode a push with the opcode it actually used, for the minimal-push comparison."""
    n = len(data)
    if op < 0x4C:
        return bytes((op,)) + data
    if op == 0x4C:
        return b"\x4c" + bytes((n,)) + data
    if op == 0x4D:
        return b"\x4d" + n.to_bytes(2, "little") + data
    return b"\x4e" + n.to_bytes(4, "little") + data


def match_multisig(script: bytes) -> tuple[int, list[bytes]] | None:
    """(required, pubkeys) for a bare ``m <keys…> n CHECKMULTISIG`` script, else None."""
    if not script or script[-1] != 0xAE:
        return None
    try:
        ops = script_ops(script)
    except ScriptError:
        return None
    if len(ops) < 3:
        return None
    required = _script_number(*ops[0], 1, MAX_PUBKEYS_PER_MULTISIG)
    if required is None:
        return None
    keys: list[bytes] = []
    i = 1
    while i < len(ops) and ops[i][1] is not None and pubkey_size_ok(ops[i][1]):
        keys.append(ops[i][1])
        i += 1
    if i != len(ops) - 2 or ops[-1] != (0xAE, None):
        return None
    total = _script_number(*ops[i], required, MAX_PUBKEYS_PER_MULTISIG)
    if total is None or total != len(keys):
        return None
    return required, keys


def classify(script: bytes) -> tuple[ScriptType, list[bytes]]:
    """Core's Solver: the template type and its solutions.

    Solutions: P2PK [pubkey]; P2PKH [hash160]; P2SH [script hash]; witness v0/v1
    [program]; WITNESS_UNKNOWN [version byte, program]; MULTISIG [m, keys…, n]
    (m and n as one-byte values); others [].
    """
    if is_p2sh(script):
        return ScriptType.SCRIPTHASH, [bytes(script[2:22])]
    wp = witness_program(script)
    if wp is not None:
        version, program = wp
        if version == 0 and len(program) == 20:
            return ScriptType.WITNESS_V0_KEYHASH, [program]
        if version == 0 and len(program) == 32:
            return ScriptType.WITNESS_V0_SCRIPTHASH, [program]
        if version == 1 and len(program) == 32:
            return ScriptType.WITNESS_V1_TAPROOT, [program]
        if version == 1 and program == ANCHOR_PROGRAM:
            return ScriptType.ANCHOR, []
        if version != 0:
            return ScriptType.WITNESS_UNKNOWN, [bytes((version,)), program]
        return ScriptType.NONSTANDARD, []
    if script and script[0] == 0x6A and is_push_only(script[1:]):
        return ScriptType.NULL_DATA, []
    n = len(script)
    if n in (35, 67) and script[0] == n - 2 and script[-1] == 0xAC:
        key = bytes(script[1:-1])
        if pubkey_size_ok(key):
            return ScriptType.PUBKEY, [key]
    if is_p2pkh(script):
        return ScriptType.PUBKEYHASH, [bytes(script[3:23])]
    ms = match_multisig(script)
    if ms is not None:
        m, keys = ms
        return ScriptType.MULTISIG, [bytes((m,)), *keys, bytes((len(keys),))]
    return ScriptType.NONSTANDARD, []


def script_type(script: bytes) -> ScriptType:
    return classify(script)[0]


def p2pk_script(pubkey: bytes) -> bytes:
    if not pubkey_size_ok(pubkey):
        raise ScriptError("P2PK needs a 33- or 65-byte public key")
    return push_data(pubkey) + b"\xac"


def p2pkh_script(pubkey_hash: bytes) -> bytes:
    _need(pubkey_hash, 20, "P2PKH key hash")
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def p2sh_script(script_hash: bytes) -> bytes:
    _need(script_hash, 20, "P2SH script hash")
    return b"\xa9\x14" + script_hash + b"\x87"


def p2wpkh_script(pubkey_hash: bytes) -> bytes:
    _need(pubkey_hash, 20, "P2WPKH key hash")
    return b"\x00\x14" + pubkey_hash


def p2wsh_script(script_hash: bytes) -> bytes:
    _need(script_hash, 32, "P2WSH script hash")
    return b"\x00\x20" + script_hash


def p2tr_script(output_key: bytes) -> bytes:
    _need(output_key, 32, "P2TR x-only output key")
    return b"\x51\x20" + output_key


def p2a_script() -> bytes:
    """Pay-to-anchor: ``OP_1 <0x4e73>``."""
    return b"\x51\x02" + ANCHOR_PROGRAM


def witness_script(version: int, program: bytes) -> bytes:
    """Witness output for any version 0..16 and a 2..40-byte program."""
    if not 0 <= version <= 16:
        raise ScriptError(f"witness version {version} not in 0..16")
    if not 2 <= len(program) <= 40:
        raise ScriptError(f"witness program of {len(program)} bytes not in 2..40")
    return bytes((small_int_opcode(version), len(program))) + program


def null_data_script(*pushes: bytes) -> bytes:
    """``OP_RETURN`` followed by minimal pushes of each argument."""
    return b"\x6a" + b"".join(push_data(p) for p in pushes)


def multisig_script(required: int, pubkeys: Sequence[bytes]) -> bytes:
    """Bare ``m <keys> n OP_CHECKMULTISIG`` (1 ≤ m ≤ n ≤ 16 so both are small-int opcodes)."""
    n = len(pubkeys)
    if not 1 <= required <= n <= 16:
        raise ScriptError(f"multisig needs 1 <= m <= n <= 16, got m={required} n={n}")
    for key in pubkeys:
        if not pubkey_size_ok(key):
            raise ScriptError("multisig key is not a 33- or 65-byte public key")
    body = b"".join(push_data(k) for k in pubkeys)
    return bytes((small_int_opcode(required),)) + body + bytes((small_int_opcode(n), 0xAE))


def _need(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise ScriptError(f"{what} must be {size} bytes, got {len(value)}")


# -- disassembly --------------------------------------------------------------------


def script_to_asm(script: bytes) -> str:
    """Core's ScriptToAsmStr (without signature-hash decoding): pushes ≤ 4 bytes as numbers."""
    words: list[str] = []
    pos = 0
    n = len(script)
    while pos < n:
        try:
            op, data, pos = _read_op(script, pos)
        except ScriptError:
            words.append("[error]")
            break
        if data is not None:
            if len(data) <= 4:
                words.append(str(decode_script_num(data)))
            else:
                words.append(data.hex())
        else:
            words.append(op_name(op))
    return " ".join(words)


# -- sigops -----------------------------------------------------------------------------


def sigop_count(script: bytes, accurate: bool = False) -> int:
    """Core's CScript::GetSigOpCount(fAccurate)."""
    n = 0
    last = 0xFF
    for op, _ in _ops_until_error(script):
        if op == 0xAC or op == 0xAD:
            n += 1
        elif op == 0xAE or op == 0xAF:
            if accurate and 0x51 <= last <= 0x60:
                n += last - 0x50
            else:
                n += MAX_PUBKEYS_PER_MULTISIG
        last = op
    return n


def p2sh_sigop_count(script_pubkey: bytes, script_sig: bytes) -> int:
    """Core's GetSigOpCount(scriptSig): accurate count of the redeem script for P2SH."""
    if not is_p2sh(script_pubkey):
        return sigop_count(script_pubkey, True)
    last: bytes = b""
    pos = 0
    n = len(script_sig)
    while pos < n:
        try:
            op, data, pos = _read_op(script_sig, pos)
        except ScriptError:
            return 0
        if op > 0x60:
            return 0
        last = data if data is not None else b""
    return sigop_count(last, True)


def witness_sigops(version: int, program: bytes, witness: Sequence[bytes]) -> int:
    """Core's WitnessSigOps: 1 for P2WPKH, accurate count of the P2WSH script, else 0."""
    if version == 0:
        if len(program) == 20:
            return 1
        if len(program) == 32 and witness:
            return sigop_count(witness[-1], True)
    return 0


def count_witness_sigops(
    script_sig: bytes, script_pubkey: bytes, witness: Sequence[bytes], flags: int
) -> int:
    """Core's CountWitnessSigOps, including P2SH-wrapped witness programs."""
    if not flags & ScriptFlag.WITNESS:
        return 0
    wp = witness_program(script_pubkey)
    if wp is not None:
        return witness_sigops(wp[0], wp[1], witness)
    if is_p2sh(script_pubkey) and is_push_only(script_sig):
        last = b""
        for _, data in _ops_until_error(script_sig):
            last = data if data is not None else b""
        wp = witness_program(last)
        if wp is not None:
            return witness_sigops(wp[0], wp[1], witness)
    return 0


def legacy_sigop_count(tx: Tx) -> int:
    """Core's GetLegacySigOpCount: inaccurate counts over every scriptSig and scriptPubKey."""
    return sum(sigop_count(i.script_sig) for i in tx.inputs) + sum(
        sigop_count(o.script_pubkey) for o in tx.outputs
    )


def p2sh_sigops(tx: Tx, spent_outputs: Sequence[TxOut]) -> int:
    """Core's GetP2SHSigOpCount: redeem-script sigops of inputs spending P2SH outputs."""
    if tx.is_coinbase():
        return 0
    _check_spent(tx, spent_outputs)
    n = 0
    for txin, prev in zip(tx.inputs, spent_outputs, strict=True):
        if is_p2sh(prev.script_pubkey):
            n += p2sh_sigop_count(prev.script_pubkey, txin.script_sig)
    return n


def get_transaction_sigop_cost(tx: Tx, spent_outputs: Sequence[TxOut], flags: int) -> int:
    """Core's GetTransactionSigOpCost: legacyx4 + P2SHx4 (if P2SH) + witness sigops.

    ``spent_outputs[i]`` is the output spent by input ``i`` (ignored for a coinbase).
    """
    cost = legacy_sigop_count(tx) * WITNESS_SCALE_FACTOR
    if tx.is_coinbase():
        return cost
    _check_spent(tx, spent_outputs)
    if flags & ScriptFlag.P2SH:
        cost += p2sh_sigops(tx, spent_outputs) * WITNESS_SCALE_FACTOR
    for txin, prev in zip(tx.inputs, spent_outputs, strict=True):
        cost += count_witness_sigops(txin.script_sig, prev.script_pubkey, txin.witness, flags)
    return cost


def _check_spent(tx: Tx, spent_outputs: Sequence[TxOut]) -> None:
    if len(spent_outputs) != len(tx.inputs):
        raise ScriptError(
            f"{len(tx.inputs)} inputs but {len(spent_outputs)} spent outputs were given"
        )
