"""The read loop every listener's connection runs: read, hand the bytes over, drain, close.

One peer's failure — malformed bytes, a policy refusal, silence during its handshake, a
lost socket, even a bug of ours — closes that connection only, with the reason logged; the
listener and every other connection keep going. Subclasses say what a read means
(`on_data`), when the handshake is over, and how they close.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable

from protocols.stratum_v1.errors import ProtocolError as Sv1ProtocolError
from protocols.sv2.errors import ProtocolError as Sv2ProtocolError

__all__ = ["READ_SIZE", "ClosePeer", "PeerSession"]

READ_SIZE = 65536


class ClosePeer(Exception):
    """Close this connection: a policy decision, not malformed bytes."""


class PeerSession(abc.ABC):
    """Base of one accepted connection. `await run()` serves it until it ends."""

    #: How the log names this kind of peer ("SV2 miner", "SV1 miner", "JD client").
    kind = "peer"
    #: Why a peer silent past `handshake_timeout` is closed (for the log).
    timeout_reason = "no handshake within the timeout"
    #: The listener's logger.
    log = logging.getLogger("blvm.stratum_v2")

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handshake_timeout: float,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.handshake_timeout = handshake_timeout

    # what subclasses define ---------------------------------------------------------------

    @abc.abstractmethod
    def handshaking(self) -> bool:
        """True until the peer has set itself up (reads are timed until then)."""

    @abc.abstractmethod
    def on_data(self, data: bytes) -> Awaitable[None] | None:
        """Handle one read; may return an awaitable (handlers that wait on something)."""

    def on_protocol_error(self, exc: Exception) -> None:
        """Count a peer closed for malformed bytes (nothing by default)."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""

    # the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        reader, writer, log = self.reader, self.writer, self.log
        try:
            while True:
                if self.handshaking():
                    async with asyncio.timeout(self.handshake_timeout):
                        data = await reader.read(READ_SIZE)
                else:
                    data = await reader.read(READ_SIZE)
                if not data:
                    break
                pending = self.on_data(data)
                if pending is not None:
                    await pending
                await writer.drain()
        except (Sv2ProtocolError, Sv1ProtocolError) as exc:
            self.on_protocol_error(exc)
            log.warning("closing %s %s: protocol error: %s", self.kind, self.peer, exc)
        except ClosePeer as exc:
            log.info("closing %s %s: %s", self.kind, self.peer, exc)
        except TimeoutError:
            log.info("closing %s %s: %s", self.kind, self.peer, self.timeout_reason)
        except (ConnectionError, OSError) as exc:
            log.info("%s %s lost: %s", self.kind, self.peer, exc)
        except Exception:  # a bug must cost this connection only, never the listener
            log.exception("internal error while serving %s %s", self.kind, self.peer)
        finally:
            self.close()
