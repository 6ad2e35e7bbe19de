"""Logged-out studio sessions, kept server-side until they would have expired anyway.

A session cookie is signed, not stored (:mod:`charstudio.web.auth`), so logging out must
remember the session's id: ``<home>/studio_revoked_sessions.json`` maps each revoked id
to its expiry, and an id past its expiry is dropped at the next logout (the cookie is dead
by then anyway). The file is read again only when it changes (its ``mtime_ns`` and size),
so checking a request costs one ``stat``; it survives restarts and is shared by every
server process on the data root. Writes go through the store's atomic write; two logouts
racing in two processes can lose one revocation, never corrupt the file.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from charstudio.errors import StorageError
from charstudio.library.store import atomic_write_bytes

__all__ = ["REVOKED_FILE", "RevokedSessions"]

REVOKED_FILE = "studio_revoked_sessions.json"


class RevokedSessions:
    """The set of revoked session ids, persisted in one small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._ids: dict[str, int] = {}

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._current()

    def revoke(self, session_id: str, *, expires: int) -> None:
        """Remember ``session_id`` as logged out until ``expires`` (Unix seconds)."""
        with self._lock:
            now = time.time()
            kept = {k: v for k, v in self._current().items() if v > now}
            kept[session_id] = expires
            atomic_write_bytes(self.path, json.dumps(kept, sort_keys=True).encode())
            self.path.chmod(0o600)
            self._ids, self._seen = kept, None

    def _current(self) -> dict[str, int]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._ids, self._seen = {}, None
            return self._ids
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            try:
                data = json.loads(self.path.read_text() or "{}")
            except ValueError as exc:  # fail closed: no session is trusted over a bad file
                raise StorageError(
                    f"{self.path} is not valid JSON; delete it (sessions logged out earlier "
                    "then work again until they expire) or change the API token"
                ) from exc
            self._ids = {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
            self._seen = seen
        return self._ids
