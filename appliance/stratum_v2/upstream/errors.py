"""Errors of upstream pool connections."""

from __future__ import annotations

from appliance.stratum_v2.errors import StratumV2ModuleError


class UpstreamError(StratumV2ModuleError):
    """An upstream connection failed; the failover moves on to the next one."""


class UpstreamRefused(UpstreamError):
    """The pool refused us (SetupConnection.Error, OpenMiningChannel.Error, bad authorize)."""


class UpstreamIncompatible(UpstreamError):
    """The pool's terms do not fit ours (e.g. an extranonce space smaller than we need)."""


class UpstreamConfigError(UpstreamError):
    """An upstream entry in the configuration cannot be used (says which and why)."""
