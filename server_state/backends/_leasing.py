"""``server_state_lock[key]`` across processes: a lease, held while the
outermost ``with`` lasts, in the style of redis-py's ``lock.py``.

A shared backend (Redis, SQLite) keeps leases of its own; the protocol is
small (``LeaseTaker``): take (a token, re-entrant in-process through the
local lock it wraps, waiting until the mirror has every commit made before
it), drop (never another holder's lease), renew (the backend's thread, each
third of the lease time) and fencing: every commit of a thread that holds
leases carries their tokens, and the backend refuses it when one of them is
no longer the lease's token (``ServerStateLeaseError``, nothing written).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

__all__ = ["LeaseTaker", "LeasedLock"]


class LeaseTaker(Protocol):
    kind: str  # for messages: "Redis", "SQLite"

    def take(self, key: str, blocking: bool, deadline: float | None) -> Any:
        """``key``'s lease: its token, or None when not blocking (or past
        ``deadline``) and another process holds it."""

    def drop(self, key: str, token: Any) -> None:
        """Release ``key``'s lease if ``token`` still holds it."""


class LeasedLock:
    """``server_state_lock[key]`` on a shared backend: this process's
    re-entrant lock, plus a lease while the outermost ``with`` lasts."""

    def __init__(self, leases: LeaseTaker, key: str, local: threading.RLock) -> None:
        self._leases, self._key, self._local = leases, key, local
        self._depth = 0  # only the owning thread changes it
        self._token: str | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not self._local.acquire(blocking, timeout if blocking else -1):
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            token = self._leases.take(self._key, blocking, deadline)
        except BaseException:
            self._local.release()
            raise
        if token is None:
            self._local.release()
            return False
        self._token, self._depth = token, 1
        return True

    def release(self) -> None:
        if not self._local._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError(f"server_state_lock[{self._key!r}] released without being held")
        self._depth -= 1
        if self._depth == 0:
            token, self._token = self._token, None
            try:
                if token is not None:
                    self._leases.drop(self._key, token)
            finally:
                self._local.release()
        else:
            self._local.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._local._is_owned()  # type: ignore[attr-defined,no-any-return]

    def locked(self) -> bool:
        return self._depth > 0 or self._local._is_owned()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<server_state_lock[{self._key!r}] ({self._leases.kind} lease, {'held' if self._depth else 'free'})>"
