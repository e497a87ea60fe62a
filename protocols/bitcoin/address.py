"""Addresses: base58/base58check, bech32 (BIP173), bech32m (BIP350), WIF keys.

Users give payout addresses, not scripts: :func:`address_to_script` turns one into
the scriptPubKey to pay, for the network the appliance runs on, and refuses
anything that belongs to another network or breaks an encoding rule, with an error
that says which rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.bitcoin.errors import BitcoinProtocolError
from protocols.bitcoin.hashes import sha256d
from protocols.bitcoin.networks import Network, get_network
from protocols.bitcoin.script import ScriptType, classify, witness_program, witness_script


class AddressError(BitcoinProtocolError):
    """A string that is not a valid address (or key) for the requested network."""


# -- base58 ------------------------------------------------------------------------------

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """Base58 with one '1' per leading zero byte."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    n = int.from_bytes(data, "big")
    digits = []
    while n:
        n, r = divmod(n, 58)
        digits.append(B58_ALPHABET[r])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises :class:`AddressError` on a non-base58 character."""
    n = 0
    for pos, c in enumerate(text):
        digit = _B58_INDEX.get(c)
        if digit is None:
            raise AddressError(f"invalid base58 character {c!r} at position {pos}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + sha256d(payload)[:4])


def b58check_decode(text: str) -> bytes:
    """Decode base58check and verify its 4-byte checksum; returns the payload."""
    raw = b58decode(text)
    if len(raw) < 4:
        raise AddressError("base58check string too short to hold a checksum")
    payload, check = raw[:-4], raw[-4:]
    if sha256d(payload)[:4] != check:
        raise AddressError("invalid base58check checksum")
    return payload


# -- bech32 / bech32m ------------------------------------------------------------------------

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
BECH32_MAX_LENGTH = 90


class Encoding(enum.IntEnum):
    """Checksum constants of BIP173 (bech32) and BIP350 (bech32m)."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _GEN[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_encode(hrp: str, data: list[int], encoding: Encoding) -> str:
    """Encode 5-bit ``data`` under ``hrp`` (lower case output)."""
    hrp = hrp.lower()
    poly = _polymod(_hrp_expand(hrp) + list(data) + [0] * 6) ^ encoding
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in list(data) + checksum)


def bech32_decode(text: str) -> tuple[str, list[int], Encoding]:
    """Decode a bech32 or bech32m string: (hrp in lower case, 5-bit data, encoding)."""
    if len(text) > BECH32_MAX_LENGTH:
        raise AddressError(f"bech32 string longer than {BECH32_MAX_LENGTH} characters")
    for c in text:
        if not 33 <= ord(c) <= 126:
            raise AddressError(f"bech32 string has an invalid character {c!r}")
    if text.lower() != text and text.upper() != text:
        raise AddressError("bech32 string mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise AddressError("bech32 string has no human-readable part or no '1' separator")
    if sep + 7 > len(text):
        raise AddressError("bech32 data part shorter than its 6-character checksum")
    hrp = text[:sep]
    data = []
    for c in text[sep + 1 :]:
        d = _BECH32_INDEX.get(c)
        if d is None:
            raise AddressError(f"invalid bech32 character {c!r}")
        data.append(d)
    const = _polymod(_hrp_expand(hrp) + data)
    if const == Encoding.BECH32:
        enc = Encoding.BECH32
    elif const == Encoding.BECH32M:
        enc = Encoding.BECH32M
    else:
        raise AddressError("invalid bech32/bech32m checksum")
    return hrp, data[:-6], enc


def convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    """Regroup bits (8→5 to encode, 5→8 with ``pad=False`` to decode, as BIP173 does)."""
    acc = 0
    bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise AddressError("value out of range for bit conversion")
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits:
        raise AddressError("bech32 data has more than 4 bits of padding")
    elif (acc << (to_bits - bits)) & maxv:
        raise AddressError("bech32 padding bits are not zero")
    return out


def encode_segwit_address(hrp: str, version: int, program: bytes) -> str:
    """Segwit address: bech32 for version 0, bech32m for 1..16."""
    _check_program(version, program)
    enc = Encoding.BECH32 if version == 0 else Encoding.BECH32M
    return bech32_encode(hrp, [version, *convert_bits(program, 8, 5, True)], enc)


def decode_segwit_address(hrp: str, address: str) -> tuple[int, bytes]:
    """(witness version, program) of a segwit address for ``hrp``; checks BIP173/BIP350 rules."""
    got_hrp, data, enc = bech32_decode(address)
    if got_hrp != hrp.lower():
        raise AddressError(f"address is for human-readable part {got_hrp!r}, expected {hrp!r}")
    if not data:
        raise AddressError("segwit address has no witness version")
    version = data[0]
    if version > 16:
        raise AddressError(f"invalid witness version {version}")
    program = bytes(convert_bits(data[1:], 5, 8, False))
    _check_program(version, program)
    if version == 0 and enc != Encoding.BECH32:
        raise AddressError("version 0 witness address must use bech32, not bech32m")
    if version != 0 and enc != Encoding.BECH32M:
        raise AddressError(f"version {version} witness address must use bech32m, not bech32")
    return version, program


def _check_program(version: int, program: bytes) -> None:
    if not 0 <= version <= 16:
        raise AddressError(f"invalid witness version {version}")
    if not 2 <= len(program) <= 40:
        raise AddressError(f"witness program of {len(program)} bytes; must be 2..40")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError(
            f"version 0 witness program of {len(program)} bytes; must be 20 (P2WPKH) or 32 (P2WSH)"
        )


# -- addresses <-> scripts ----------------------------------------------------------------------


def address_to_script(address: str, network: str | Network = "mainnet") -> bytes:
    """The scriptPubKey an address pays to on ``network``; :class:`AddressError` if invalid."""
    net = get_network(network)
    if not address:
        raise AddressError("empty address")
    # Bech32 first when the string starts with this network's HRP; base58 otherwise.
    sep = address.rfind("1")
    if sep > 0 and address[:sep].lower() == net.bech32_hrp:
        version, program = decode_segwit_address(net.bech32_hrp, address)
        return witness_script(version, program)
    try:
        payload = b58check_decode(address)
    except AddressError as exc:
        if sep > 0 and _looks_bech32(address):
            raise AddressError(
                f"address has human-readable part {address[:sep].lower()!r}; "
                f"{net.name} uses {net.bech32_hrp!r}"
            ) from None
        raise AddressError(f"not a valid {net.name} address: {exc}") from None
    if len(payload) != 21:
        raise AddressError(
            f"base58 address payload is {len(payload)} bytes; expected 21 (version + hash)"
        )
    prefix, h = payload[0], payload[1:]
    if prefix == net.p2pkh_prefix:
        return b"\x76\xa9\x14" + h + b"\x88\xac"
    if prefix == net.p2sh_prefix:
        return b"\xa9\x14" + h + b"\x87"
    raise AddressError(
        f"base58 address version byte 0x{prefix:02x} is not a {net.name} P2PKH "
        f"(0x{net.p2pkh_prefix:02x}) or P2SH (0x{net.p2sh_prefix:02x}) prefix"
    )


def _looks_bech32(address: str) -> bool:
    try:
        bech32_decode(address)
    except AddressError:
        return False
    return True


def script_to_address(script_pubkey: bytes, network: str | Network = "mainnet") -> str:
    """The address of a scriptPubKey; :class:`AddressError` for types without one."""
    net = get_network(network)
    kind, sol = classify(script_pubkey)
    if kind is ScriptType.PUBKEYHASH:
        return b58check_encode(bytes((net.p2pkh_prefix,)) + sol[0])
    if kind is ScriptType.SCRIPTHASH:
        return b58check_encode(bytes((net.p2sh_prefix,)) + sol[0])
    if kind in (ScriptType.WITNESS_V0_KEYHASH, ScriptType.WITNESS_V0_SCRIPTHASH):
        return encode_segwit_address(net.bech32_hrp, 0, sol[0])
    if kind is ScriptType.WITNESS_V1_TAPROOT:
        return encode_segwit_address(net.bech32_hrp, 1, sol[0])
    if kind is ScriptType.WITNESS_UNKNOWN:
        return encode_segwit_address(net.bech32_hrp, sol[0][0], sol[1])
    if kind is ScriptType.ANCHOR:
        return encode_segwit_address(net.bech32_hrp, 1, bytes(script_pubkey[2:]))
    raise AddressError(f"a {kind.value} scriptPubKey has no address")


@dataclass(frozen=True, slots=True)
class AddressInfo:
    """What an address pays to, in the shape of Core's ``validateaddress`` answer."""

    address: str  # normalized: bech32 in lower case
    script_pubkey: bytes
    script_type: ScriptType
    is_script: bool  # P2SH or P2WSH: pays to a script hash
    is_witness: bool
    witness_version: int | None
    witness_program: bytes | None


def address_info(address: str, network: str | Network = "mainnet") -> AddressInfo:
    """Decode ``address`` for ``network`` into :class:`AddressInfo` (AddressError if invalid)."""
    script = address_to_script(address, network)
    kind, _ = classify(script)
    wp = witness_program(script)
    return AddressInfo(
        address=script_to_address(script, network),
        script_pubkey=script,
        script_type=kind,
        is_script=kind in (ScriptType.SCRIPTHASH, ScriptType.WITNESS_V0_SCRIPTHASH),
        is_witness=wp is not None,
        witness_version=wp[0] if wp else None,
        witness_program=wp[1] if wp else None,
    )


def is_valid_address(address: str, network: str | Network = "mainnet") -> bool:
    try:
        address_to_script(address, network)
    except AddressError:
        return False
    return True


# -- WIF private keys ------------------------------------------------------------------------------


def encode_wif(secret: bytes, network: str | Network = "mainnet", compressed: bool = True) -> str:
    if len(secret) != 32:
        raise AddressError(f"private key must be 32 bytes, got {len(secret)}")
    net = get_network(network)
    return b58check_encode(bytes((net.wif_prefix,)) + secret + (b"\x01" if compressed else b""))


def decode_wif(wif: str, network: str | Network = "mainnet") -> tuple[bytes, bool]:
    """(32-byte secret, compressed flag) of a WIF key for ``network``."""
    net = get_network(network)
    payload = b58check_decode(wif)
    if not payload or payload[0] != net.wif_prefix:
        raise AddressError(f"not a {net.name} WIF private key (wrong version byte)")
    body = payload[1:]
    if len(body) == 33 and body[32] == 1:
        return body[:32], True
    if len(body) == 32:
        return body, False
    raise AddressError("WIF payload must be 32 bytes, or 33 ending in 0x01")
