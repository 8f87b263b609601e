"""Per-key re-entrant locks, kept apart from the values.

A lock exists before its key is set (the seed's counter takes it to create the
key) and outlives a ``del`` of the key, so a held lock is never replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

__all__ = ["KeyLocks", "ServerStateLock"]


class KeyLocks:
    def __init__(self) -> None:
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> threading.RLock:
        lock = self._locks.get(key)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(key, threading.RLock())
        return lock

    @contextmanager
    def holding(self, keys: list[str]) -> Iterator[None]:
        """Hold several keys' locks at once. All or none: when one is busy,
        release the others and wait for that one, so that a caller already
        holding some lock (``with server_state_lock["b"]: ...``) can never
        deadlock against us, whatever order it takes locks in."""
        locks = [self.get(key) for key in sorted(set(keys))]
        while True:
            with ExitStack() as stack:
                busy = None
                for lock in locks:
                    if not lock.acquire(blocking=False):
                        busy = lock
                        break
                    stack.callback(lock.release)
                if busy is None:
                    yield
                    return
            # Wait for the busy lock without holding any other, then retry.
            if busy.acquire(timeout=1.0):
                busy.release()


class ServerStateLock:
    """``server_state_lock["k"]`` and ``server_state_lock.k``: the lock of key k."""

    __slots__ = ("_check", "_locks")
    _locks: KeyLocks
    _check: Callable[[object], str]

    def __init__(self, locks: KeyLocks, check: Callable[[object], str]) -> None:
        object.__setattr__(self, "_locks", locks)
        object.__setattr__(self, "_check", check)

    def __getitem__(self, key: str) -> threading.RLock:
        return self._locks.get(self._check(key))

    def __getattr__(self, key: str) -> threading.RLock:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("server_state_lock is read-only: use `with server_state_lock[key]:`.")
