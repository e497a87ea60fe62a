"""Errors raised by the simulated board."""

from __future__ import annotations


class SimError(Exception):
    """Base class for every simulated-board error."""


class SimConfigError(SimError):
    """A simulation setting is out of range (unknown model, zero chips, ...)."""


class SimControlError(SimError):
    """A control-socket request failed or the board could not be reached."""
