"""htpasswd files with bcrypt entries (``user:$2y$...``), as ``htpasswd -B`` writes them.

bcrypt is slow on purpose (~50-200 ms a check) and clients send credentials on every request,
so a successful check is remembered (keyed by a SHA-256 of user+password) until the file changes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import bcrypt

from dockyard.errors import InvalidArgument


def hash_password(password: str, rounds: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


class Htpasswd:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._entries: dict[str, bytes] = {}
        self._ok: set[bytes] = set()

    def _load(self) -> None:
        mtime = os.stat(self.path).st_mtime
        if mtime == self._mtime:
            return
        entries: dict[str, bytes] = {}
        for lineno, line in enumerate(self.path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, h = line.partition(":")
            if not sep or not h.startswith(("$2y$", "$2a$", "$2b$")):
                raise InvalidArgument(f"{self.path}:{lineno}: expected user:<bcrypt hash>")
            # Apache writes $2y$; the bcrypt library speaks $2b$ (same algorithm).
            entries[user] = ("$2b$" + h[4:]).encode()
        self._entries, self._ok, self._mtime = entries, set(), mtime

    def verify(self, user: str, password: str) -> bool:
        self._load()
        stored = self._entries.get(user)
        if stored is None:
            return False
        key = hashlib.sha256(b"%s\0%s\0%s" % (user.encode(), password.encode(), stored)).digest()
        if key in self._ok:
            return True
        if bcrypt.checkpw(password.encode(), stored):
            self._ok.add(key)
            return True
        return False


def constant_eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
