"""Stratum V1 exceptions and the share-rejection codes pools put on the wire."""

from __future__ import annotations

import enum


class StratumV1Error(Exception):
    """Base of everything this package raises."""


class ProtocolError(StratumV1Error):
    """The peer sent something we cannot accept (bad JSON, oversize line, wrong shape).

    The connection object that raised it is dead afterwards: the caller closes that one
    connection and keeps serving the others.
    """


class LocalProtocolError(StratumV1Error):
    """Our own side tried to send something the protocol state does not allow."""


class ErrorCode(enum.IntEnum):
    """Error codes of the de-facto Stratum V1 protocol (as sent by common pools)."""

    OTHER = 20
    JOB_NOT_FOUND = 21
    DUPLICATE_SHARE = 22
    LOW_DIFFICULTY_SHARE = 23
    UNAUTHORIZED_WORKER = 24
    NOT_SUBSCRIBED = 25

    @property
    def default_message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    ErrorCode.OTHER: "Other/Unknown",
    ErrorCode.JOB_NOT_FOUND: "Job not found",
    ErrorCode.DUPLICATE_SHARE: "Duplicate share",
    ErrorCode.LOW_DIFFICULTY_SHARE: "Low difficulty share",
    ErrorCode.UNAUTHORIZED_WORKER: "Unauthorized worker",
    ErrorCode.NOT_SUBSCRIBED: "Not subscribed",
}
