"""Errors of the Stratum V2 module and the SubmitShares.Error codes it sends."""

from __future__ import annotations

import enum


class StratumV2ModuleError(Exception):
    """Base of errors raised by `appliance.stratum_v2`."""


class KeyFileError(StratumV2ModuleError):
    """The authority/static key files are unreadable or malformed."""


class ShareError(enum.StrEnum):
    """SubmitShares.Error codes, spelled as SRI's pool sends them.

    `invalid-timestamp` is ours (SRI has no code for an ntime below min_ntime); receivers log
    unknown codes and carry on, as the spec requires.
    """

    INVALID_CHANNEL_ID = "invalid-channel-id"
    STALE_SHARE = "stale-share"
    INVALID_JOB_ID = "invalid-job-id"
    BAD_EXTRANONCE_SIZE = "bad-extranonce-size"
    INVALID_SHARE = "invalid-share"
    INVALID_TIMESTAMP = "invalid-timestamp"
    VERSION_ROLLING_NOT_ALLOWED = "version-rolling-not-allowed"
    DIFFICULTY_TOO_LOW = "difficulty-too-low"
    DUPLICATE_SHARE = "duplicate-share"
