"""Mempool errors and Bitcoin Core's transaction reject-reason strings.

The reason strings are exactly Core's (``sendrawtransaction`` and ``testmempoolaccept``
print them and peers' tests compare them); the debug ``message`` next to a reason is free
text. Consensus reasons from ``CheckTransaction``/``CheckTxInputs`` come from
``node.chain.errors`` unchanged.
"""

from __future__ import annotations

from node.chain.errors import ChainError

# -- policy (IsStandardTx / PreChecks) ----------------------------------------------------------
COINBASE = "coinbase"
VERSION = "version"
TX_SIZE = "tx-size"
TX_SIZE_SMALL = "tx-size-small"
SCRIPTSIG_SIZE = "scriptsig-size"
SCRIPTSIG_NOT_PUSHONLY = "scriptsig-not-pushonly"
SCRIPTPUBKEY = "scriptpubkey"
BARE_MULTISIG = "bare-multisig"
DATACARRIER = "datacarrier"
DUST = "dust"
NON_FINAL = "non-final"
NON_BIP68_FINAL = "non-BIP68-final"
ALREADY_IN_MEMPOOL = "txn-already-in-mempool"
SAME_NONWITNESS_IN_MEMPOOL = "txn-same-nonwitness-data-in-mempool"
ALREADY_KNOWN = "txn-already-known"
MEMPOOL_CONFLICT = "txn-mempool-conflict"
NONSTANDARD_INPUTS = "bad-txns-nonstandard-inputs"
WITNESS_NONSTANDARD = "bad-witness-nonstandard"
TOO_MANY_SIGOPS = "bad-txns-too-many-sigops"
MEMPOOL_MIN_FEE = "mempool min fee not met"
MIN_RELAY_FEE = "min relay fee not met"
TOO_LONG_CHAIN = "too-long-mempool-chain"
SPENDS_CONFLICTING = "bad-txns-spends-conflicting-tx"
MEMPOOL_FULL = "mempool full"
MAX_FEE_EXCEEDED = "max-fee-exceeded"  # testmempoolaccept/sendrawtransaction maxfeerate
# -- replacement (policy/rbf.cpp) ----------------------------------------------------------------
INSUFFICIENT_FEE = "insufficient fee"
TOO_MANY_REPLACEMENTS = "too many potential replacements"
REPLACEMENT_ADDS_UNCONFIRMED = "replacement-adds-unconfirmed"
# -- scripts ---------------------------------------------------------------------------------------
MANDATORY_SCRIPT_FAILED = "mandatory-script-verify-flag-failed"


def script_failed(detail: str) -> str:
    """Core's ``mandatory-script-verify-flag-failed (detail)`` form."""
    return f"{MANDATORY_SCRIPT_FAILED} ({detail})"


class MempoolError(ChainError):
    """Base of errors raised by ``node.mempool`` (not used for rejections: see AcceptResult)."""


class MempoolPersistError(MempoolError):
    """A mempool file is unreadable: wrong magic/version, truncated, or checksum mismatch."""


class Rejected(MempoolError):
    """Internal flow: a transaction broke a rule; becomes an AcceptResult with ``reason``."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}" if message else reason)
