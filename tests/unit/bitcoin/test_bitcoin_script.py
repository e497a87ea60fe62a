"""Script opcodes, iteration, pushes, templates and sigop counting."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.bitcoin import script as S
from protocols.bitcoin.script import Opcode, ScriptError, ScriptFlag, ScriptType
from protocols.bitcoin.script_asm import AsmError, parse_asm
from protocols.bitcoin.tx import Tx, TxIn, TxOut, outpoint

KEY33 = bytes.fromhex("02" + "11" * 32)
KEY65 = bytes.fromhex("04" + "22" * 64)
H20 = bytes(range(20))
H32 = bytes(range(32))


# -- names -----------------------------------------------------------------------------


def test_op_names_follow_core_getopname():
    assert S.op_name(0) == "0"
    assert S.op_name(0x4F) == "-1"
    assert [S.op_name(0x50 + i) for i in range(1, 17)] == [str(i) for i in range(1, 17)]
    assert S.op_name(0x4C) == "OP_PUSHDATA1"
    assert S.op_name(0x50) == "OP_RESERVED"
    assert S.op_name(0xB1) == "OP_CHECKLOCKTIMEVERIFY"
    assert S.op_name(0xB2, prefix=False) == "CHECKSEQUENCEVERIFY"
    assert S.op_name(0xBA) == "OP_CHECKSIGADD"
    assert S.op_name(0xFF) == "OP_INVALIDOPCODE"
    assert S.op_name(0xBB) == "OP_UNKNOWN"
    assert S.op_name(0x20) == "OP_UNKNOWN"  # a direct push byte is not an opcode name
    assert S.op_name(0xAC, prefix=False) == "CHECKSIG"


def test_opcode_table_is_complete():
    named = {int(op) for op in Opcode}
    expected = {0, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0xFF} | set(range(0x51, 0xBB))
    assert named == expected
    assert Opcode.OP_NOP2 is Opcode.OP_CHECKLOCKTIMEVERIFY
    assert Opcode.OP_TRUE is Opcode.OP_1
    assert S.OP_DUP == 0x76  # module-level names exist too


# -- iteration ---------------------------------------------------------------------------


def test_iter_script_reports_pushes_and_offsets():
    script = bytes.fromhex("76a914") + H20 + bytes.fromhex("88ac")
    ops = list(S.iter_script(script))
    assert [o.opcode for o in ops] == [0x76, 0xA9, 0x14, 0x88, 0xAC]
    assert ops[2].data == H20 and ops[2].offset == 2
    assert ops[3].offset == 23 and ops[3].data is None


@pytest.mark.parametrize(
    "hexscript",
    [
        "01",
        "0501020304",
        "4c",
        "4c02ff",
        "4d01",
        "4d0100",
        "4e000000",
        "4e01000000",
        "76a915" + "00" * 20,
    ],
)
def test_truncated_push_raises(hexscript):
    with pytest.raises(ScriptError):
        list(S.iter_script(bytes.fromhex(hexscript)))
    assert not S.is_valid_script(bytes.fromhex(hexscript))


def test_pushdata_forms_decode():
    assert S.script_ops(bytes.fromhex("4c0107")) == [(0x4C, b"\x07")]
    assert S.script_ops(bytes.fromhex("4d0100aa")) == [(0x4D, b"\xaa")]
    assert S.script_ops(bytes.fromhex("4e01000000bb")) == [(0x4E, b"\xbb")]
    assert S.script_ops(b"\x00") == [(0, b"")]


# -- numbers and pushes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "enc"),
    [
        (0, ""),
        (1, "01"),
        (-1, "81"),
        (127, "7f"),
        (128, "8000"),
        (-128, "8080"),
        (255, "ff00"),
        (256, "0001"),
        (-255, "ff80"),
        (0x7FFFFFFF, "ffffff7f"),
        (-0x7FFFFFFF, "ffffffff"),
    ],
)
def test_script_num_vectors(n, enc):
    assert S.encode_script_num(n).hex() == enc
    assert S.decode_script_num(bytes.fromhex(enc), 5, require_minimal=True) == n


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**39), max_value=2**39))
def test_script_num_round_trip(n):
    assert S.decode_script_num(S.encode_script_num(n), 6, require_minimal=True) == n


def test_script_num_rejects_non_minimal_and_long():
    with pytest.raises(ScriptError):
        S.decode_script_num(b"\x01\x00", require_minimal=True)
    with pytest.raises(ScriptError):
        S.decode_script_num(b"\x80", require_minimal=True)  # negative zero
    with pytest.raises(ScriptError):
        S.decode_script_num(b"\x01\x02\x03\x04\x05")
    assert S.decode_script_num(b"\x80") == 0  # allowed when not minimal-checked


def test_push_data_choices():
    assert S.push_data(b"") == b"\x00"
    assert S.push_data(b"\x05") == b"\x55"
    assert S.push_data(b"\x05", minimal=False) == b"\x01\x05"
    assert S.push_data(b"\x81") == b"\x4f"
    assert S.push_data(b"\x00") == b"\x01\x00"
    assert S.push_data(b"a" * 75)[:1] == b"\x4b"
    assert S.push_data(b"a" * 76)[:2] == b"\x4c\x4c"
    assert S.push_data(b"a" * 256)[:3] == b"\x4d\x00\x01"
    assert S.push_data(b"a" * 65536)[:5] == b"\x4e\x00\x00\x01\x00"
    assert S.push_int(0) == b"\x00" and S.push_int(-1) == b"\x4f" and S.push_int(16) == b"\x60"
    assert S.push_int(17) == b"\x01\x11" and S.push_int(-2) == b"\x01\x82"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_push_data_round_trips_through_iteration(data):
    (op,) = list(S.iter_script(S.push_data(data, minimal=False)))
    assert op.data == data


def test_build_script():
    p2pkh = S.build_script(
        [Opcode.OP_DUP, Opcode.OP_HASH160, H20, Opcode.OP_EQUALVERIFY, Opcode.OP_CHECKSIG]
    )
    assert p2pkh == S.p2pkh_script(H20)
    assert (
        S.build_script([S.Raw(S.push_int(500)), Opcode.OP_CHECKSEQUENCEVERIFY])
        == b"\x02\xf4\x01\xb2"
    )
    with pytest.raises(ScriptError):
        S.build_script([300])
    with pytest.raises(ScriptError):
        S.build_script(["DUP"])  # type: ignore[list-item]


# -- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "kind", "solutions"),
    [
        (S.p2pk_script(KEY33), ScriptType.PUBKEY, [KEY33]),
        (S.p2pk_script(KEY65), ScriptType.PUBKEY, [KEY65]),
        (S.p2pkh_script(H20), ScriptType.PUBKEYHASH, [H20]),
        (S.p2sh_script(H20), ScriptType.SCRIPTHASH, [H20]),
        (S.p2wpkh_script(H20), ScriptType.WITNESS_V0_KEYHASH, [H20]),
        (S.p2wsh_script(H32), ScriptType.WITNESS_V0_SCRIPTHASH, [H32]),
        (S.p2tr_script(H32), ScriptType.WITNESS_V1_TAPROOT, [H32]),
        (S.p2a_script(), ScriptType.ANCHOR, []),
        (S.witness_script(2, H20[:2]), ScriptType.WITNESS_UNKNOWN, [b"\x02", H20[:2]]),
        (S.witness_script(1, H20), ScriptType.WITNESS_UNKNOWN, [b"\x01", H20]),
        (S.null_data_script(b"hello", b""), ScriptType.NULL_DATA, []),
        (b"\x6a", ScriptType.NULL_DATA, []),
        (
            S.multisig_script(2, [KEY33, KEY65, KEY33]),
            ScriptType.MULTISIG,
            [b"\x02", KEY33, KEY65, KEY33, b"\x03"],
        ),
        (b"\x00\x15" + bytes(21), ScriptType.NONSTANDARD, []),  # v0 of a bad length
        (b"\x6a\x76", ScriptType.NONSTANDARD, []),  # OP_RETURN then a non-push
        (b"\x21" + b"\x05" + bytes(32) + b"\xac", ScriptType.NONSTANDARD, []),  # bad key prefix
        (b"", ScriptType.NONSTANDARD, []),
    ],
)
def test_classify(script, kind, solutions):
    assert S.classify(script) == (kind, solutions)


def test_multisig_matching_edge_cases():
    # n that disagrees with the key count
    bad = b"\x51" + S.push_data(KEY33) + b"\x52\xae"
    assert S.match_multisig(bad) is None
    # m > n
    assert S.match_multisig(b"\x53" + S.push_data(KEY33) * 2 + b"\x52\xae") is None
    # a trailing byte after OP_CHECKMULTISIG that happens to be 0xae inside a push
    assert S.match_multisig(b"\x51" + S.push_data(KEY33) + b"\x51\x01\xae") is None
    # m and n as minimal numeric pushes (17..20 keys) are accepted like Core's solver
    keys = [KEY33] * 17
    script = b"\x01\x11" + b"".join(S.push_data(k) for k in keys) + b"\x01\x11\xae"
    assert S.match_multisig(script) == (17, keys)
    with pytest.raises(ScriptError):
        S.multisig_script(3, [KEY33, KEY33])
    with pytest.raises(ScriptError):
        S.multisig_script(1, [b"\x02" + bytes(31)])


def test_template_builders_check_sizes():
    for builder, size in [
        (S.p2pkh_script, 20),
        (S.p2sh_script, 20),
        (S.p2wpkh_script, 20),
        (S.p2wsh_script, 32),
        (S.p2tr_script, 32),
    ]:
        with pytest.raises(ScriptError):
            builder(bytes(size + 1))
    with pytest.raises(ScriptError):
        S.witness_script(17, H20)
    with pytest.raises(ScriptError):
        S.witness_script(1, b"\x01")
    with pytest.raises(ScriptError):
        S.p2pk_script(bytes(33))


def test_witness_program_detection():
    assert S.witness_program(S.p2tr_script(H32)) == (1, H32)
    assert S.witness_program(b"\x60\x02\xaa\xbb") == (16, b"\xaa\xbb")
    assert S.witness_program(b"\x50\x02\xaa\xbb") is None  # OP_RESERVED is no version
    assert S.witness_program(b"\x00\x03\xaa\xbb") is None  # length byte mismatch
    assert S.witness_program(b"\x00\x29" + bytes(41)) is None  # program > 40 bytes
    assert S.is_unspendable(b"\x6a") and not S.is_unspendable(S.p2wpkh_script(H20))


def test_script_to_asm():
    asm = S.script_to_asm(S.p2pkh_script(H20))
    assert asm == f"OP_DUP OP_HASH160 {H20.hex()} OP_EQUALVERIFY OP_CHECKSIG"
    assert S.script_to_asm(bytes.fromhex("0102ff")) == "2 OP_INVALIDOPCODE"
    assert S.script_to_asm(bytes.fromhex("76030102")) == "OP_DUP [error]"
    assert S.script_to_asm(b"\x00\x4f\x51\x02\xe8\x03") == "0 -1 1 1000"


# -- sigops --------------------------------------------------------------------------------------


def test_legacy_sigop_count_like_core():
    ms = b"\x51" + S.push_data(KEY33) + S.push_data(KEY33) + b"\x52\xae"
    assert S.sigop_count(ms, accurate=True) == 2
    assert S.sigop_count(ms, accurate=False) == 20
    assert S.sigop_count(b"\xac\xad\xae\xaf") == 42
    assert S.sigop_count(b"\x60\xaf", accurate=True) == 16
    # a truncated push ends counting, keeping what was already counted
    assert S.sigop_count(b"\xac\xac\x4c") == 2
    assert S.sigop_count(b"\xac\x05\xac") == 1


def test_p2sh_sigop_count():
    redeem = S.multisig_script(2, [KEY33, KEY33, KEY33])
    spk = S.p2sh_script(hashlib.new("sha256", redeem).digest()[:20])
    sig = S.push_data(b"\x00") + S.push_data(b"\x30" * 71) + S.push_data(redeem)
    assert S.p2sh_sigop_count(spk, sig) == 3
    assert S.p2sh_sigop_count(spk, sig + b"\x76") == 0  # non-push in scriptSig
    assert S.p2sh_sigop_count(spk, b"\x4c") == 0  # bad push
    assert S.p2sh_sigop_count(S.p2pkh_script(H20), sig) == 1


def _spend(script_sig: bytes, witness: list[bytes], spk: bytes) -> tuple[Tx, list[TxOut]]:
    tx = Tx(
        2,
        [TxIn(outpoint(H32, 0), script_sig, 0xFFFFFFFF, witness)],
        [TxOut(1000, S.p2wpkh_script(H20))],
        0,
    )
    return tx, [TxOut(2000, spk)]


def test_transaction_sigop_cost_like_core():
    flags = ScriptFlag.P2SH | ScriptFlag.WITNESS
    # P2WPKH: one witness sigop, not scaled
    tx, spent = _spend(b"", [b"\x30" * 71, KEY33], S.p2wpkh_script(H20))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 1
    assert S.get_transaction_sigop_cost(tx, spent, ScriptFlag.P2SH) == 0
    # P2SH-P2WPKH
    inner = S.p2wpkh_script(H20)
    tx, spent = _spend(S.push_data(inner), [b"\x30" * 71, KEY33], S.p2sh_script(H20))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 1
    # P2WSH 2-of-2: accurate count of the witness script
    ws = S.multisig_script(2, [KEY33, KEY33])
    tx, spent = _spend(b"", [b"", b"\x30" * 71, b"\x30" * 71, ws], S.p2wsh_script(H32))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 2
    # P2SH-P2WSH
    tx, spent = _spend(S.push_data(S.p2wsh_script(H32)), [b"", ws], S.p2sh_script(H20))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 2
    # bare 1-of-1 multisig in a P2SH redeem script: legacy and P2SH counts x4
    redeem = S.multisig_script(1, [KEY33])
    tx, spent = _spend(S.push_data(b"\x30" * 71) + S.push_data(redeem), [], S.p2sh_script(H20))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 4
    assert S.get_transaction_sigop_cost(tx, spent, ScriptFlag.NONE) == 0
    # outputs count legacy sigops x4 (P2PKH output = 1 sigop)
    tx.outputs.append(TxOut(1, S.p2pkh_script(H20)))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 8
    with pytest.raises(ScriptError):
        S.get_transaction_sigop_cost(tx, [], flags)


def test_taproot_and_unknown_witness_have_no_sigops():
    flags = ScriptFlag.P2SH | ScriptFlag.WITNESS | ScriptFlag.TAPROOT
    tx, spent = _spend(b"", [b"\xac" * 10, b"\xc0" + H32], S.p2tr_script(H32))
    assert S.get_transaction_sigop_cost(tx, spent, flags) == 0


def test_coinbase_sigop_cost_is_legacy_only():
    cb = Tx(
        2,
        [TxIn(b"\x00" * 32 + b"\xff" * 4, b"\x51\xac", 0xFFFFFFFF)],
        [TxOut(50, S.p2pkh_script(H20))],
        0,
    )
    assert S.get_transaction_sigop_cost(cb, [], ScriptFlag.P2SH | ScriptFlag.WITNESS) == 8


def test_parse_flags():
    assert S.parse_flags("P2SH,WITNESS") == ScriptFlag.P2SH | ScriptFlag.WITNESS
    assert S.parse_flags("NONE") == 0 and S.parse_flags("") == 0
    with pytest.raises(ScriptError):
        S.parse_flags("P2SH,BOGUS")


# -- ASM shorthand -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asm", "hexscript"),
    [
        ("0x4c 0x01 0x07", "4c0107"),
        ("'Az'", "02417a"),
        ("''", "00"),
        ("'a'", "0161"),  # single bytes are pushed, not turned into OP_N
        ("0", "00"),
        ("-1", "4f"),
        ("1", "51"),
        ("16", "60"),
        ("17", "0111"),
        ("-2", "0182"),
        ("1000", "02e803"),
        ("4294967295", "05ffffffff00"),
        ("-4294967295", "05ffffffff80"),
        ("DUP HASH160", "76a9"),
        ("OP_DUP OP_HASH160", "76a9"),
        ("NOP2 CHECKLOCKTIMEVERIFY OP_NOP3", "b1b1b2"),
        ("RESERVED VER", "5062"),
        ("CHECKSIGADD", "ba"),
        ("  DUP\t\nDROP  ", "7675"),
        ("0x4c03 0x222222", "4c03222222"),
    ],
)
def test_parse_asm(asm, hexscript):
    assert parse_asm(asm).hex() == hexscript


@pytest.mark.parametrize(
    "asm",
    ["4294967296", "-4294967296", "0x", "0xabc", "FOO", "'unterminated", "OP_UNKNOWN", "0xzz"],
)
def test_parse_asm_rejects(asm):
    with pytest.raises(AsmError):
        parse_asm(asm)


def test_parse_asm_every_vector(core_vectors):
    rows = json.loads((core_vectors / "script_tests.json").read_text())
    count = 0
    for row in rows:
        if len(row) < 4:
            continue
        first = 1 if isinstance(row[0], list) else 0
        for text in row[first : first + 2]:
            parse_asm(text.replace("#TAPROOTOUTPUT#", ""))
            count += 1
    assert count > 2000
    for name in ("tx_valid.json", "tx_invalid.json"):
        for row in json.loads((core_vectors / name).read_text()):
            if isinstance(row[0], list):
                for prev in row[0]:
                    parse_asm(prev[2])


def test_asm_disassembly_round_trip():
    for script in [S.p2pkh_script(H20), S.multisig_script(1, [KEY33]), S.p2tr_script(H32)]:
        words = S.script_to_asm(script).split()
        rebuilt = parse_asm(
            " ".join(
                w
                if w.startswith("OP_") or len(w) < 9
                else "0x" + S.push_data(bytes.fromhex(w)).hex()
                for w in words
            )
        )
        assert rebuilt == script


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_scripts_never_crash_readers(script):
    kind, solutions = S.classify(script)
    assert isinstance(kind, ScriptType) and isinstance(solutions, list)
    assert S.sigop_count(script, True) <= S.sigop_count(script, False)
    S.script_to_asm(script)
    S.is_push_only(script)
    S.p2sh_sigop_count(S.p2sh_script(H20), script)
    try:
        ops = S.script_ops(script)
    except ScriptError:
        assert not S.is_valid_script(script)
    else:
        assert S.is_valid_script(script)
        # re-encoding each op with the opcode it used gives the script back
        rebuilt = b"".join(
            bytes((op,)) if data is None else S._encode_push_like(op, data) for op, data in ops
        )
        assert rebuilt == script
