"""Errors of the chain package, with Bitcoin Core's reject-reason strings.

API (stable; other chain modules import these):

- ``ChainError``: base of everything this package raises.
- ``ConsensusError(reason, message="", *, header_invalid=None, height=None, block_hash=None)``:
  a block, header or transaction breaks a consensus rule. ``reason`` is the exact Core
  reject reason (one of the constants below, e.g. ``HIGH_HASH == "high-hash"``), which is
  what ``submitblock`` returns and what tests compare. ``header_invalid`` says whether the
  block (and so every descendant) must be marked permanently failed; ``None`` means "derive
  from the reason": False for reasons in :data:`NOT_PERMANENT` (mutated block data that a
  peer can resend correctly, a missing parent, a timestamp that is only too new *now*),
  True otherwise. ``height``/``block_hash`` (internal byte order) are optional context
  filled by whoever knows them.
- ``bad_version(version)`` -> ``"bad-version(0x20000000)"`` form;
  ``script_verify_failed(detail)`` -> ``"block-script-verify-flag-failed (detail)"``.
"""

from __future__ import annotations

# -- header checks (CheckBlockHeader / ContextualCheckBlockHeader / AcceptBlockHeader) --------
HIGH_HASH = "high-hash"  # PoW does not meet nBits (or nBits out of range)
BAD_DIFFBITS = "bad-diffbits"  # nBits differs from GetNextWorkRequired
TIME_TOO_OLD = "time-too-old"  # time <= median time past
TIME_TOO_NEW = "time-too-new"  # time > now + MAX_FUTURE_BLOCK_TIME
TIME_TIMEWARP_ATTACK = "time-timewarp-attack"  # BIP94: first block of a period too early
BAD_VERSION_PREFIX = "bad-version"  # full reason is bad_version(v)
BAD_PREVBLK = "bad-prevblk"  # parent is known and invalid
PREV_BLK_NOT_FOUND = "prev-blk-not-found"  # parent unknown
DUPLICATE = "duplicate"  # header/block already known
DUPLICATE_INVALID = "duplicate-invalid"  # header already known and marked failed
INCONCLUSIVE_NOT_BEST_PREVBLK = "inconclusive-not-best-prevblk"  # a proposal off our tip
BAD_GENESIS = "bad-genesis"  # a different block claims height 0 (our own reason)
CHECKPOINT_MISMATCH = "checkpoint mismatch"

# -- block checks (CheckBlock / ContextualCheckBlock) -----------------------------------------
BAD_TXNMRKLROOT = "bad-txnmrklroot"
BAD_TXNS_DUPLICATE = "bad-txns-duplicate"  # CVE-2012-2459 mutated merkle tree
BAD_BLK_LENGTH = "bad-blk-length"
BAD_BLK_WEIGHT = "bad-blk-weight"
BAD_CB_MISSING = "bad-cb-missing"
BAD_CB_MULTIPLE = "bad-cb-multiple"
BAD_BLK_SIGOPS = "bad-blk-sigops"
BAD_CB_HEIGHT = "bad-cb-height"
BAD_WITNESS_NONCE_SIZE = "bad-witness-nonce-size"
BAD_WITNESS_MERKLE_MATCH = "bad-witness-merkle-match"
UNEXPECTED_WITNESS = "unexpected-witness"
BAD_TXNS_NONFINAL = "bad-txns-nonfinal"  # locktime (ContextualCheckBlock) and BIP68 locks

# -- transaction checks (CheckTransaction, context free) --------------------------------------
BAD_TXNS_VIN_EMPTY = "bad-txns-vin-empty"
BAD_TXNS_VOUT_EMPTY = "bad-txns-vout-empty"
BAD_TXNS_OVERSIZE = "bad-txns-oversize"
BAD_TXNS_VOUT_NEGATIVE = "bad-txns-vout-negative"
BAD_TXNS_VOUT_TOOLARGE = "bad-txns-vout-toolarge"
BAD_TXNS_TXOUTTOTAL_TOOLARGE = "bad-txns-txouttotal-toolarge"
BAD_TXNS_INPUTS_DUPLICATE = "bad-txns-inputs-duplicate"
BAD_CB_LENGTH = "bad-cb-length"
BAD_TXNS_PREVOUT_NULL = "bad-txns-prevout-null"

# -- transaction checks against the UTXO set (Consensus::CheckTxInputs, ConnectBlock) ----------
BAD_TXNS_INPUTS_MISSINGORSPENT = "bad-txns-inputs-missingorspent"
BAD_TXNS_PREMATURE_SPEND_OF_COINBASE = "bad-txns-premature-spend-of-coinbase"
BAD_TXNS_INPUTVALUES_OUTOFRANGE = "bad-txns-inputvalues-outofrange"
BAD_TXNS_IN_BELOWOUT = "bad-txns-in-belowout"
BAD_TXNS_FEE_OUTOFRANGE = "bad-txns-fee-outofrange"
BAD_TXNS_ACCUMULATED_FEE_OUTOFRANGE = "bad-txns-accumulated-fee-outofrange"
BAD_TXNS_BIP30 = "bad-txns-BIP30"
BAD_CB_AMOUNT = "bad-cb-amount"
BLOCK_SCRIPT_VERIFY_FLAG_FAILED = "block-script-verify-flag-failed"  # full: script_verify_failed()

# Reasons that do not make the header permanently invalid (Core: BLOCK_MUTATED,
# BLOCK_MISSING_PREV, BLOCK_TIME_FUTURE): the same header may still carry a valid block.
NOT_PERMANENT = frozenset(
    {
        BAD_TXNMRKLROOT,
        BAD_TXNS_DUPLICATE,
        BAD_WITNESS_NONCE_SIZE,
        BAD_WITNESS_MERKLE_MATCH,
        UNEXPECTED_WITNESS,
        PREV_BLK_NOT_FOUND,
        TIME_TOO_NEW,
        DUPLICATE,
    }
)


def bad_version(version: int) -> str:
    """Core's reason for an obsolete version: ``bad-version(0x%08x)``."""
    return f"{BAD_VERSION_PREFIX}(0x{version & 0xFFFFFFFF:08x})"


def script_verify_failed(detail: str) -> str:
    """Core's reason for a failed input script, e.g. ``(tx 3 input 0)`` as detail."""
    return f"{BLOCK_SCRIPT_VERIFY_FLAG_FAILED} ({detail})"


class ChainError(Exception):
    """Base class for errors raised by ``node.chain``."""


class ConsensusError(ChainError):
    """A consensus rule is broken; ``reason`` is Bitcoin Core's reject-reason string."""

    def __init__(
        self,
        reason: str,
        message: str = "",
        *,
        header_invalid: bool | None = None,
        height: int | None = None,
        block_hash: bytes | None = None,
    ) -> None:
        self.reason = reason
        self.message = message
        if header_invalid is None:
            header_invalid = reason not in NOT_PERMANENT
        self.header_invalid = header_invalid
        self.height = height
        self.block_hash = block_hash
        super().__init__(f"{reason}: {message}" if message else reason)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (hash in display order) for CLI and RPC output."""
        return {
            "reason": self.reason,
            "message": self.message,
            "height": self.height,
            "hash": self.block_hash[::-1].hex() if self.block_hash else None,
        }
