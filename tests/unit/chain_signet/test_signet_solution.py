"""BIP325 block solutions, checked through Bitcoin Core's script engine."""

from __future__ import annotations

import dataclasses

import coincurve
import pytest

from node.chain.errors import ConsensusError
from node.chain.params import SIGNET
from node.chain.signet import SIGNET_HEADER, check_signet_block, signet_txs, split_commitment
from node.mining.assembler import assemble_block, create_coinbase
from protocols.bitcoin.compact import compact_size
from protocols.bitcoin.merkle import merkle_root
from protocols.bitcoin.script import push_data
from protocols.bitcoin.sighash import SigHash, legacy_sighash
from protocols.bitcoin.tx import TxOut

KEY = coincurve.PrivateKey(bytes(range(1, 33)))
PUB = KEY.public_key.format()
CHALLENGE = b"\x51" + push_data(PUB) + b"\x51\xae"  # 1-of-1 bare multisig, like signet's default
PARAMS = dataclasses.replace(SIGNET, signet_challenge=CHALLENGE)


def _block_with_solution(challenge: bytes, sign: bool = True, extra: bytes = b""):
    coinbase = create_coinbase(1, 50 * 10**8, b"\x51")
    idx = len(coinbase.outputs) - 1
    commitment = coinbase.outputs[idx].script_pubkey
    coinbase.outputs[idx] = TxOut(0, commitment + push_data(SIGNET_HEADER, minimal=False))
    coinbase.invalidate()
    block = assemble_block(SIGNET.genesis_hash, 1_700_000_000, SIGNET.pow_limit_bits, [coinbase])
    txs = signet_txs(block, challenge)
    if sign:
        digest = legacy_sighash(txs.to_sign, 0, challenge, SigHash.ALL)
        sig = KEY.sign(digest, hasher=None) + bytes((SigHash.ALL,))
        script_sig = b"\x00" + push_data(sig, minimal=False)
    else:
        script_sig = b""
    solution = compact_size(len(script_sig)) + script_sig + b"\x00" + extra
    coinbase.outputs[idx] = TxOut(
        0, commitment + push_data(SIGNET_HEADER + solution, minimal=False)
    )
    coinbase.invalidate()
    block.header.merkle_root = merkle_root([tx.txid for tx in block.txs])[0]
    return block


def test_valid_solution_is_accepted_and_strips_back_to_the_signed_form() -> None:
    block = _block_with_solution(CHALLENGE)
    check_signet_block(block, PARAMS)
    script = block.txs[0].outputs[-1].script_pubkey
    stripped, solution = split_commitment(script)
    assert solution is not None and stripped.endswith(push_data(SIGNET_HEADER, minimal=False))


@pytest.mark.parametrize("tamper", ["time", "version", "signature", "missing", "extraneous"])
def test_tampered_blocks_are_rejected(tamper: str) -> None:
    if tamper == "missing":
        block = _block_with_solution(CHALLENGE, sign=False)
    elif tamper == "extraneous":
        block = _block_with_solution(CHALLENGE, extra=b"\x00")
    else:
        block = _block_with_solution(CHALLENGE)
    if tamper == "time":
        block.header.time += 1
    elif tamper == "version":
        block.header.version ^= 4
    elif tamper == "signature":
        cb = block.txs[0]
        script = bytearray(cb.outputs[-1].script_pubkey)
        script[-10] ^= 1
        cb.outputs[-1] = TxOut(0, bytes(script))
        cb.invalidate()
    with pytest.raises(ConsensusError) as err:
        check_signet_block(block, PARAMS)
    assert err.value.reason == "bad-signet-blksig"


def test_trivial_challenge_needs_no_solution() -> None:
    params = dataclasses.replace(SIGNET, signet_challenge=b"\x51")
    check_signet_block(_block_with_solution(b"\x51", sign=False), params)


def test_block_without_witness_commitment_is_rejected() -> None:
    coinbase = create_coinbase(1, 50 * 10**8, b"\x51", with_commitment=False)
    block = assemble_block(SIGNET.genesis_hash, 1_700_000_000, SIGNET.pow_limit_bits, [coinbase])
    with pytest.raises(ConsensusError):
        check_signet_block(block, PARAMS)


def test_genesis_is_exempt() -> None:
    check_signet_block(SIGNET.genesis_block(), SIGNET)


DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "signet_blocks_1_10.txt"


def _real_blocks():
    from protocols.bitcoin.block import Block

    return [Block.from_hex(line) for line in DATA.read_text().split()]


def test_real_default_signet_blocks_carry_valid_solutions() -> None:
    blocks = _real_blocks()
    assert blocks[0].header.prev_hash == SIGNET.genesis_hash
    for block in blocks:
        check_signet_block(block, SIGNET)


def test_real_blocks_fail_a_two_of_two_variant_of_the_challenge() -> None:
    # Core's feature_signet: the same keys as a 2-of-2 must reject these 1-of-2 solutions.
    two_of_two = b"\x52" + SIGNET.signet_challenge[1:]
    params = dataclasses.replace(SIGNET, signet_challenge=two_of_two)
    with pytest.raises(ConsensusError):
        check_signet_block(_real_blocks()[0], params)
