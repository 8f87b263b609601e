"""Per-key re-entrant locks, kept apart from the values.

A lock exists before its key is set (the seed's counter takes it to create the
key) and a lock that anyone holds, or may be about to take, is never replaced:
a ``del`` drops its key's lock only when nobody else has a reference to it.

The library's own waits (``update``, ``transact``) are bounded: a thread that
waits ``LOCK_PATIENCE`` seconds for a key's lock while it holds another key's
lock is most likely in a deadlock (two threads each holding one key's lock and
updating the other's key), and gets ``ServerStateDeadlockError`` naming both.
A thread that holds no other lock keeps waiting, with a warning in the log.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from ._errors import ServerStateDeadlockError

__all__ = ["LOCK_PATIENCE", "KeyLocks", "ServerStateLock"]

_LOG = logging.getLogger("server_state")

LOCK_PATIENCE = 10.0  # seconds; module attribute so tests can shorten it

# References to a lock that only the dict and ``discard`` itself hold: the
# dict's, the local name's and getrefcount's argument.
_UNSHARED = 3


class KeyLocks:
    """Every key's lock. ``local(key)`` is this process's re-entrant lock,
    what the library's own writes take; ``get(key)`` is what
    ``server_state_lock[key]`` gives users: the same lock, or, with a backend
    shared by replicas (``factory``), a wrapper that also holds a lease there
    while the outermost ``with`` lasts."""

    def __init__(self, factory: Callable[[str, threading.RLock], Any] | None = None) -> None:
        self._locks: dict[str, threading.RLock] = {}
        self._wrapped: dict[str, Any] = {}
        self._guard = threading.Lock()
        self.factory = factory

    def local(self, key: str) -> threading.RLock:
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.RLock())
        return lock

    def get(self, key: str) -> Any:
        if self.factory is None:
            return self.local(key)
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            local = self.local(key)
            with self._guard:
                wrapped = self._wrapped.get(key)
                if wrapped is None:
                    wrapped = self._wrapped[key] = self.factory(key, local)
        return wrapped

    def __len__(self) -> int:
        return len(self._locks)

    def __contains__(self, key: str) -> bool:
        return key in self._locks

    def names(self) -> list[str]:
        """The keys that have a lock now (``list()`` copies the dict in one step)."""
        return list(self._locks)

    def acquire(self, key: str) -> threading.RLock:
        """Take ``key``'s lock for the library's own use (bounded patience);
        the caller releases it."""
        lock = self.local(key)
        if not lock.acquire(True, LOCK_PATIENCE):
            self.waited(key, lock)
        return lock

    def waited(self, key: str, lock: threading.RLock) -> None:
        """After ``LOCK_PATIENCE`` waiting for ``key``'s lock: raise on a
        likely deadlock, else take the lock, however long that takes."""
        self._judge_wait([key])
        lock.acquire()

    def _judge_wait(self, keys: list[str]) -> None:
        """After ``LOCK_PATIENCE`` waiting for ``keys``: raise if this thread
        holds another key's lock (a deadlock, almost surely), else warn."""
        held = self.held_here(exclude=keys)
        if held:
            raise ServerStateDeadlockError(keys, held, LOCK_PATIENCE)
        _LOG.warning(
            "server_state: waited %.0f s for the lock of %s; another thread holds it "
            "(a long `with server_state_lock[...]:` block?). Still waiting.",
            LOCK_PATIENCE,
            ", ".join(map(repr, keys)),
        )

    def held_here(self, exclude: list[str]) -> list[str]:
        """Keys whose lock this thread holds (slow: only after a long wait)."""
        skip = set(exclude)
        return sorted(k for k, lock in list(self._locks.items()) if k not in skip and lock._is_owned())  # type: ignore[attr-defined]

    def discard(self, key: str) -> None:
        """Forget ``key``'s lock if nobody holds it or has a reference to it
        (a deleted per-user key must not leave a lock behind). With the GIL,
        taking a reference from the dict is atomic, so a thread between
        ``get`` and ``acquire`` holds one and keeps the lock in place."""
        with self._guard:
            wrapped = self._wrapped.get(key)
            if wrapped is not None:
                if sys.getrefcount(wrapped) > _UNSHARED:
                    return  # someone has server_state_lock[key] in hand
                del self._wrapped[key]
                del wrapped
            lock = self._locks.get(key)
            if lock is None or sys.getrefcount(lock) > _UNSHARED:
                return
            if lock._is_owned() or not lock.acquire(blocking=False):  # type: ignore[attr-defined]
                return  # held, by this thread or another
            lock.release()
            del self._locks[key]

    @contextmanager
    def holding(self, keys: list[str], wait: bool = True) -> Iterator[bool]:
        """Hold several keys' locks at once; yields True. All or none: when
        one is busy, release the others and wait for that one, so that a
        caller already holding some lock (``with server_state_lock["b"]:``)
        can never deadlock against us, whatever order it takes locks in. With
        ``wait`` false, yields False (holding nothing) when one is busy.

        The lock waited for is kept while the others are tried again (as
        C++'s ``std::lock`` does). Taking it only to release it at once and
        start over made each waiter hand the lock on to the next one: with
        several threads after the same keys, the locks went round the
        waiters, rarely all in one hand, and commits slowed to a few a second
        for seconds on end (on 3.13 most often: its locks wake waiters
        differently)."""
        ordered = sorted(set(keys))
        locks = [self.local(key) for key in ordered]
        deadline = time.monotonic() + LOCK_PATIENCE
        judged = False
        kept: threading.RLock | None = None  # the lock waited for, held
        while True:
            with ExitStack() as stack:
                if kept is not None:
                    stack.callback(kept.release)
                busy = None
                for lock in locks:
                    if lock is kept:
                        continue
                    if not lock.acquire(blocking=False):
                        busy = lock
                        break
                    stack.callback(lock.release)
                if busy is None or not wait:
                    yield busy is None
                    return
            # Wait for the busy lock without holding any other, then keep it.
            kept = None
            while not busy.acquire(timeout=min(1.0, LOCK_PATIENCE)):
                if not judged and time.monotonic() > deadline:
                    judged = True
                    self._judge_wait(ordered)
            kept = busy


class ServerStateLock(Mapping[str, Any]):
    """``server_state_lock["k"]`` and ``server_state_lock.k``: the lock of key k.

    A read-only ``Mapping`` of the keys that have a lock, as upstream's: every
    key set in the state (its lock is made when first asked for) and every
    key whose lock was taken; ``"k" in server_state_lock``, iteration (the
    state's keys first), ``len``, ``keys()``. Indexing (and so ``get(k)``,
    which never returns its default) gives the key's lock, creating it: a lock
    exists before its key is set. A key named like a method (``keys``,
    ``get``...) is reached with ``server_state_lock["keys"]``. None of these
    binds the session to a key."""

    __slots__ = ("_check", "_has", "_keys", "_locks")
    _locks: KeyLocks
    _check: Callable[[object], str]
    _keys: Callable[[], list[str]]
    _has: Callable[[str], bool]

    def __init__(
        self,
        locks: KeyLocks,
        check: Callable[[object], str],
        keys: Callable[[], list[str]] | None = None,
        has: Callable[[str], bool] | None = None,
    ) -> None:
        """``keys()`` and ``has(key)`` tell the keys set in the state without
        binding anyone (without them: only the keys whose lock exists)."""
        object.__setattr__(self, "_locks", locks)
        object.__setattr__(self, "_check", check)
        object.__setattr__(self, "_keys", keys or list)
        object.__setattr__(self, "_has", has or (lambda key: False))

    def __getitem__(self, key: str) -> Any:
        return self._locks.get(self._check(key))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        key = self._check(key)
        return key in self._locks or self._has(key)

    def _names(self) -> list[str]:
        return list(dict.fromkeys([*self._keys(), *self._locks.names()]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __repr__(self) -> str:
        keys = self._names()
        return f"<server_state_lock with {len(keys)} keys: {', '.join(map(repr, keys[:10]))}>"

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("server_state_lock is read-only: use `with server_state_lock[key]:`.")
