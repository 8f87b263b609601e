"""``server_state_lock[key]`` across the processes of one SQLite file: a
row of ``leases`` (the lock itself is ``backends._leasing.LeasedLock``).

- take: in one ``BEGIN IMMEDIATE`` transaction, the row is free (absent or
  expired) or not; when free it gets this take's token, the next value of the
  file's lease counter (the fencing token), and an expiry ``ttl`` ahead.
  Taking waits until the mirror has every commit made before it, so a read
  under the lock sees the last holder's writes;
- renew: the committer's follower thread extends every lease this process
  holds each third of the lease time;
- drop: delete the row if it still has our token (never another holder's);
- fencing: every commit of a thread that holds leases checks, in its
  transaction, that each row still has the thread's token and has not
  expired (``SqliteCommitter``): else ``ServerStateLeaseError``, nothing
  written.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from ... import _locks
from ..._errors import ServerStateDeadlockError
from .._leasing import LeasedLock

if TYPE_CHECKING:
    from ._committer import SqliteCommitter

__all__ = ["LeasedLock", "Leases"]

_LOG = logging.getLogger("server_state")


class Leases:
    """The leases of one process on one state file."""

    kind = "SQLite"

    def __init__(self, committer: SqliteCommitter, ttl: float, owner: str) -> None:
        self.c, self.ttl, self.owner = committer, ttl, owner
        self._local = threading.local()  # .leases: {key: token} of this thread
        self._all: dict[str, int] = {}  # every lease held here, for the renewer
        self._all_lock = threading.Lock()
        self._renewed = 0.0

    @property
    def any_held(self) -> bool:
        """Whether any thread of this process holds a lease (a cheap check
        before ``held``)."""
        return bool(self._all)

    def held(self) -> dict[str, int]:
        """The leases this thread holds: ``{key: token}`` (its commits are fenced by them)."""
        return getattr(self._local, "leases", None) or {}

    def take(self, key: str, blocking: bool, deadline: float | None) -> int | None:
        c = self.c
        c.open()
        pause = 0.001
        while True:
            now = time.time()
            with c.sync:
                with c.writing(key, "take the lock of"):
                    row = c.conn.execute("SELECT expires FROM leases WHERE key = ?", (key,)).fetchone()
                    if row is None or row[0] <= now:
                        (token,) = c.conn.execute(
                            "UPDATE meta SET value = value + 1 WHERE name = 'lease' RETURNING value"
                        ).fetchone()
                        c.conn.execute(
                            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                            (key, token, self.owner, now + self.ttl),
                        )
                        left = 0.0
                    else:
                        token, left = None, row[0] - now
                if token is not None:
                    # What the last holder wrote is in the file: into the mirror now.
                    announce = c.catch_up_locked()
            if token is not None:
                break
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return None
            wait = min(pause, left)
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            c.closing.wait(wait)
            pause = min(pause * 2, 0.02)
        leases = getattr(self._local, "leases", None)
        if leases is None:
            leases = self._local.leases = {}
        leases[key] = token
        with self._all_lock:
            self._all[key] = token
        c.announce_all(announce)
        return int(token)

    def drop(self, key: str, token: int) -> None:
        getattr(self._local, "leases", {}).pop(key, None)
        with self._all_lock:
            if self._all.get(key) == token:
                del self._all[key]
        c = self.c
        try:
            with c.sync:
                c.conn.execute("DELETE FROM leases WHERE key = ? AND token = ?", (key, token))
        except sqlite3.Error as exc:
            _LOG.warning(
                "server_state: could not release the lock of %r in %s (%s); it expires in %g s",
                key,
                c.settings.path,
                exc,
                self.ttl,
            )

    def holder(self, keys: list[str], mine: dict[str, int]) -> str | None:
        """In a write transaction: the first of ``keys`` whose lock another
        holder has (not this thread), or None."""
        now = time.time()
        for key in keys:
            row = self.c.conn.execute("SELECT token, expires FROM leases WHERE key = ?", (key,)).fetchone()
            if row is not None and row[1] > now and mine.get(key) != row[0]:
                return key
        return None

    def lost(self, mine: dict[str, int]) -> str | None:
        """In a write transaction: the first lease this thread holds that is
        no longer its own (expired, or taken over), or None."""
        now = time.time()
        for key, token in mine.items():
            row = self.c.conn.execute("SELECT token, expires FROM leases WHERE key = ?", (key,)).fetchone()
            if row is None or row[0] != token or row[1] <= now:
                return key
        return None

    def wait_free(self, key: str, held: list[str]) -> None:
        """Until another holder releases (or loses) the lock of ``key``. A
        thread holding other locks meanwhile gets ``ServerStateDeadlockError``
        after ``LOCK_PATIENCE``, as it would in one process."""
        c = self.c
        pause = 0.001
        deadline = time.monotonic() + _locks.LOCK_PATIENCE
        while not c.closing.is_set():
            try:
                with c.sync:
                    row = c.conn.execute("SELECT expires FROM leases WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error:
                row = (time.time() + pause,)
            if row is None or row[0] <= time.time():
                return
            if held and time.monotonic() > deadline:
                raise ServerStateDeadlockError([key], held, _locks.LOCK_PATIENCE)
            c.closing.wait(pause)
            pause = min(pause * 2, 0.02)

    def renew_due(self) -> None:
        """From the follower thread: extend the leases held here, each third
        of the lease time."""
        now = time.monotonic()
        if now - self._renewed < self.ttl / 3:
            return
        self._renewed = now
        with self._all_lock:
            held = list(self._all.items())
        if not held:
            return
        c = self.c
        for key, token in held:
            try:
                with c.sync:
                    done = c.conn.execute(
                        "UPDATE leases SET expires = ? WHERE key = ? AND token = ?",
                        (time.time() + self.ttl, key, token),
                    ).rowcount
                if not done:
                    _LOG.warning(
                        "server_state: the lock of %r was lost (expired); writes under it will fail", key
                    )
            except sqlite3.Error as exc:
                _LOG.warning("server_state: could not renew the lock of %r (%s)", key, exc)
