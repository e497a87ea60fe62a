"""RPC credentials: the cookie file and ``rpcauth`` lines, checked as Bitcoin Core does.

The cookie (``__cookie__:<64 hex>``) is created fresh at each start, mode 0600,
written atomically, and removed at shutdown, so only processes that can read
the datadir can call the RPC. ``rpcauth`` lines are ``user:salt$hmac`` with
hmac = HMAC-SHA256(key=salt, msg=password), the format of Core's rpcauth.py.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

COOKIE_USER = "__cookie__"
COOKIE_FILE = ".cookie"


def make_rpcauth(user: str, password: str, salt: str | None = None) -> str:
    """An ``rpcauth`` line for ``user``/``password`` (what Core's share/rpcauth prints)."""
    salt = salt or secrets.token_hex(16)
    digest = hmac.new(salt.encode(), password.encode(), "sha256").hexdigest()
    return f"{user}:{salt}${digest}"


def write_cookie(datadir: Path) -> tuple[Path, str]:
    """Create a fresh cookie in ``datadir``; returns (path, password)."""
    password = secrets.token_hex(32)
    path = datadir / COOKIE_FILE
    fd, tmp = tempfile.mkstemp(dir=datadir, prefix=".cookie-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{COOKIE_USER}:{password}")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, password


def read_cookie(datadir: Path) -> tuple[str, str]:
    user, _, password = (datadir / COOKIE_FILE).read_text().strip().partition(":")
    return user, password


@dataclass(slots=True)
class Authenticator:
    cookie_password: str | None = None
    rpcauth: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (salt, hmac)

    def add_rpcauth(self, line: str) -> None:
        user, sep, rest = line.partition(":")
        salt, sep2, digest = rest.partition("$")
        if not (sep and sep2 and user and salt and len(digest) == 64):
            raise ValueError(f"rpcauth {line!r} is not user:salt$hash (64 hex digits)")
        self.rpcauth[user] = (salt, digest.lower())

    def check_header(self, header: str | None) -> bool:
        """True for a valid ``Authorization: Basic ...`` header."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        if user == COOKIE_USER and self.cookie_password is not None:
            return hmac.compare_digest(password, self.cookie_password)
        entry = self.rpcauth.get(user)
        if entry is None:
            return False
        salt, digest = entry
        mine = hmac.new(salt.encode(), password.encode(), "sha256").hexdigest()
        return hmac.compare_digest(mine, digest)
