"""The seam between the store engine and a backend: the committer protocol.

The engine (``server_state._store.Store``) holds what every backend shares:
the retry loops of ``set``/``update``/``delete``/``transact``, freezing and
change detection, the run-alone mode of a transaction, watchers, history,
and the ``Mirror`` every read is served from. A backend is a committer: it
decides whether a commit lands and in which order, and brings commits made
elsewhere into the mirror. It talks to the engine only through the methods
below, as an httpx transport talks to its client through ``BaseTransport``.

A commit's outcome is the tuple of ``Change``s it applied to the mirror (their
``version`` is the commit's sequence number there), or None: a conflict, and
the engine retries on the newer state. A committer applies every commit, its
own and others', to the mirror in one order, under ``mirror.lock``, with
``mirror.apply``/``mirror.apply_one``.

Leases (``server_state_lock[k]`` across processes) are a protocol of their
own: ``lock_factory(key, local_lock)`` returns the lock the facade hands out
(None: the plain re-entrant lock is enough, one process holds every commit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Protocol

from .._base import Change, Origin

if TYPE_CHECKING:
    from .._mirror import Mirror

__all__ = ["DEFAULT_NAMESPACE", "Announce", "Committer", "commit_one_by_commit", "redact"]

DEFAULT_NAMESPACE = "server_state"

# ``announce(changes, origin)``: commits made elsewhere, now in the mirror.
Announce = Callable[[tuple[Change, ...], Origin], None]


class Committer(Protocol):
    """What the engine asks of a backend."""

    url: str
    # Whether other processes commit too: then a transaction that conflicts
    # while it runs alone here is not conflicting with itself.
    shared: bool

    @property
    def lock_factory(self) -> Callable[[str, threading.RLock], Any] | None:
        """``lock_factory(key, local_lock)``: the lock the facade hands out for
        ``server_state_lock[key]`` (None: the plain re-entrant lock)."""

    def bind(self, mirror: Mirror, announce: Announce, origin: Callable[[], Origin]) -> None:
        """Once, by the engine, before anything else (no I/O): the mirror to
        keep, the function that announces commits made elsewhere, and the
        function that tells what a commit made here carries (its origin)."""

    def open(self) -> None:
        """Connect and load the state into the mirror, on first use; does
        nothing after the first call. Raises a ``ServerStateError`` naming
        where it could not connect."""

    @property
    def used(self) -> bool:
        """Whether the state was used (``configure`` refuses then)."""

    def commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        since: int,
        conflicts: AbstractSet[str] | None,
        tokens: dict[str, Any],
        who: str,
        respect: bool,
    ) -> tuple[Change, ...] | None:
        """Apply ``writes`` (stored values) and ``deletes`` if the keys of
        ``expected`` are still at those mirror versions (when None: no key of
        ``conflicts`` advanced past mirror sequence ``since``; any commit
        after ``since`` when ``conflicts`` is None too). ``tokens``: content
        fingerprints of the writes; ``who``: the writer, for the history;
        ``respect``: wait while another process holds one of the keys' locks
        (``update``/``transact``). None: a conflict, retry."""

    def commit_one(
        self, key: str, expected: int, value: Any, token: Any, who: str, respect: bool
    ) -> Change | None:
        """``commit`` of one key set at ``expected``: the hot path."""

    def confirm(self, key: str, version: int) -> bool:
        """Whether ``key`` is still at mirror ``version`` in the source of
        truth: an equal write is dropped only then (a lagging mirror must
        never drop a write)."""

    def lagged(self, seen: int) -> bool:
        """After a function given to ``update``/``transact`` raised: whether
        the mirror it read (at mirror sequence ``seen``) was behind the
        source of truth; then the mirror has caught up and the engine runs the
        function again, as after a conflict."""

    def position(self) -> int:
        """The sequence of the last commit the mirror took in, in the source
        of truth's numbering (what a test or a tool waits on)."""

    def head(self) -> int:
        """The sequence of the last commit in the source of truth (asks it):
        the mirror has every commit once ``position() >= head()``."""

    def close(self) -> None:
        """Stop what the backend runs and close its connections."""


def commit_one_by_commit(
    committer: Committer, key: str, expected: int, value: Any, token: Any, who: str, respect: bool
) -> Change | None:
    """``commit_one`` as ``commit`` of one key set at ``expected`` (a
    committer's general path for a one-key commit)."""
    changes = committer.commit(
        {key: expected},
        {key: value},
        (),
        since=0,
        conflicts=None,
        tokens={} if token is None else {key: token},
        who=who,
        respect=respect,
    )
    return None if changes is None else changes[0]


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user + ':' if user else ''}***@{host}"
    return url
