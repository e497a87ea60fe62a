"""The server's Noise identity on disk: authority key, static key, and a fresh certificate.

Miners pin the authority public key (base58, `authority.pub`); the static key signs nothing
itself but must stay stable so logs and pins are meaningful. Secrets are written 0600, via a
temp file, fsync and rename, so a crash never leaves a half-written key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from appliance.stratum_v2.errors import KeyFileError
from protocols.sv2 import keys as sv2keys
from protocols.sv2 import secp
from protocols.sv2.errors import KeyFormatError
from protocols.sv2.noise import Certificate

__all__ = ["ServerKeys", "load_or_create_keys", "write_private"]

AUTHORITY_FILE = "authority.key"
STATIC_FILE = "static.key"
PUBLIC_FILE = "authority.pub"
CERT_VALIDITY = 365 * 24 * 3600
CERT_BACKDATE = 3600  # tolerate miners whose clock is behind


@dataclass(frozen=True, slots=True)
class ServerKeys:
    authority_secret: bytes
    static_secret: bytes
    certificate: Certificate

    @property
    def authority_public(self) -> str:
        return sv2keys.encode_authority_public_key(secp.xonly_from_secret(self.authority_secret))


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Atomically replace `path` with `text`, created with `mode` from the start."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with_suppressed_unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def with_suppressed_unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _load_secret(path: Path) -> bytes | None:
    if not path.exists():
        return None
    try:
        return sv2keys.decode_secret_key(path.read_text())
    except (OSError, KeyFormatError) as exc:
        raise KeyFileError(f"{path}: {exc}; delete it to generate a new key") from None


def _new_secret() -> bytes:
    while True:
        candidate = os.urandom(32)
        if secp.is_valid_secret(candidate):
            return candidate


def load_or_create_keys(directory: Path, *, now: int, validity: int = CERT_VALIDITY) -> ServerKeys:
    """Load (or generate on first start) both keys and issue a certificate valid from now."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets = {}
    for name in (AUTHORITY_FILE, STATIC_FILE):
        path = directory / name
        secret = _load_secret(path)
        if secret is None:
            secret = _new_secret()
            write_private(path, sv2keys.encode_secret_key(secret) + "\n")
        secrets[name] = secret
    authority, static = secrets[AUTHORITY_FILE], secrets[STATIC_FILE]
    cert = Certificate.issue(
        authority, secp.xonly_from_secret(static), now - CERT_BACKDATE, now + validity
    )
    keys = ServerKeys(authority, static, cert)
    public = directory / PUBLIC_FILE
    text = keys.authority_public + "\n"
    if not public.exists() or public.read_text() != text:
        write_private(public, text, mode=0o644)
    return keys
