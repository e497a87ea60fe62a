"""Bitcoin Core's script shorthand (``ParseScript`` in core_read.cpp) → script bytes.

The test vectors (script_tests.json, tx_valid.json, tx_invalid.json) write scripts
as space-separated words:

- decimal numbers ``-1``, ``0``, ``16``, ``1000`` → pushed as CScript's ``<< int64``
  (OP_1NEGATE/OP_0..OP_16 or a CScriptNum push), limited to ±0xFFFFFFFF;
- ``0x4c0107`` → raw bytes inserted as they are (not pushed);
- ``'text'`` → the text's bytes pushed (size-based opcode, not minimal-int form);
- opcode names with or without ``OP_`` (``DUP``, ``OP_DUP``).

Core only knows the names GetOpName gives (``CHECKLOCKTIMEVERIFY``, not ``NOP2``);
this parser also accepts every :class:`~protocols.bitcoin.script.Opcode` alias
(``OP_NOP2``, ``OP_TRUE``, ``OP_0``, ``OP_PUSHDATA1``), a superset that parses every
vector the same way.
"""

from __future__ import annotations

import re

from protocols.bitcoin.script import Opcode, ScriptError, push_data, push_int

__all__ = ["OPCODE_WORDS", "AsmError", "parse_asm"]


class AsmError(ScriptError):
    """A word the shorthand does not understand."""


def _build_words() -> dict[str, int]:
    words: dict[str, int] = {}
    for name, op in Opcode.__members__.items():
        words[name] = int(op)
        words[name[3:]] = int(op)
    # Bare "0".."16"/"-1" are numbers, handled before name lookup; the bare small-number
    # names without prefix ("1NEGATE", "TRUE"...) are harmless extras.
    return words


OPCODE_WORDS: dict[str, int] = _build_words()

_NUMBER = re.compile(r"-?[0-9]+\Z")
_HEX = re.compile(r"0x((?:[0-9a-fA-F]{2})+)\Z")
_LIMIT = 0xFFFFFFFF


def parse_asm(text: str) -> bytes:
    """Parse Core's script shorthand into bytes; raises :class:`AsmError` on a bad word."""
    out = bytearray()
    for word in text.replace("\t", " ").replace("\n", " ").split(" "):
        if not word:
            continue
        if _NUMBER.match(word) and word != "-":
            n = int(word)
            if not -_LIMIT <= n <= _LIMIT:
                raise AsmError(
                    f"number {word} outside -0xFFFFFFFF..0xFFFFFFFF (script parse error)"
                )
            out += push_int(n)
            continue
        m = _HEX.match(word)
        if m:
            out += bytes.fromhex(m.group(1))
            continue
        if len(word) >= 2 and word[0] == "'" and word[-1] == "'":
            out += push_data(word[1:-1].encode(), minimal=False)
            continue
        op = OPCODE_WORDS.get(word)
        if op is None:
            raise AsmError(f"script parse error: unknown word {word!r}")
        out.append(op)
    return bytes(out)
