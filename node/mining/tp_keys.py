"""The template provider's Noise identity: an authority key kept in the datadir.

Pools and JD clients pin the authority public key (SRI's base58 text form), so it must
survive restarts: it is created once, written atomically with mode 0600, and reused. The
static Noise key is kept beside it. Certificates are short-lived and issued per connection
from the authority key, so a long-running node never serves an expired one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from protocols.sv2 import keys, secp
from protocols.sv2.errors import KeyFormatError
from protocols.sv2.noise import Certificate

__all__ = ["KEY_FILE", "TpKeyError", "TpKeys", "load_or_create_keys"]

log = logging.getLogger(__name__)
KEY_FILE = "sv2_tp_keys.json"
CERT_BACKDATE_SECONDS = 60  # tolerate a client clock a minute behind ours


class TpKeyError(ValueError):
    """The key file exists but cannot be used (say which file and what to do)."""


@dataclass(frozen=True, slots=True)
class TpKeys:
    authority_secret: bytes
    static_secret: bytes

    @property
    def authority_public(self) -> bytes:
        return secp.xonly_from_secret(self.authority_secret)

    @property
    def authority_public_text(self) -> str:
        """What pools put in ``public_key`` of their ``[template_provider_type.Sv2Tp]``."""
        return keys.encode_authority_public_key(self.authority_public)

    def certificate(self, now: int, validity: int, rng: Callable[[int], bytes]) -> Certificate:
        return Certificate.issue(
            self.authority_secret,
            secp.xonly_from_secret(self.static_secret),
            max(0, now - CERT_BACKDATE_SECONDS),
            now + validity,
            rng,
        )


def _new_secret(rng: Callable[[int], bytes]) -> bytes:
    while True:
        secret = rng(32)
        if secp.is_valid_secret(secret):
            return secret


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_keys(datadir: Path, rng: Callable[[int], bytes] = os.urandom) -> TpKeys:
    """Read ``datadir/sv2_tp_keys.json``, or create it (0600) with fresh keys."""
    path = datadir / KEY_FILE
    if path.exists():
        try:
            data = json.loads(path.read_text())
            loaded = TpKeys(
                keys.decode_secret_key(data["authority_secret_key"]),
                keys.decode_secret_key(data["static_secret_key"]),
            )
        except (OSError, ValueError, KeyError, TypeError, KeyFormatError) as exc:
            raise TpKeyError(
                f"{path}: unreadable template provider keys ({exc}); move the file away to "
                "create new keys (pools pinning the old authority key must then be updated)"
            ) from None
        if path.stat().st_mode & 0o077:
            log.warning("%s is readable by other users; chmod 600 it", path)
        return loaded
    created = TpKeys(_new_secret(rng), _new_secret(rng))
    body = {
        "authority_public_key": created.authority_public_text,
        "authority_secret_key": keys.encode_secret_key(created.authority_secret),
        "static_secret_key": keys.encode_secret_key(created.static_secret),
    }
    datadir.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(body, indent=2) + "\n")
    log.info("created template provider keys in %s", path)
    return created
