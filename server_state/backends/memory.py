"""The memory committer: one process holds the state, the mirror is the
source of truth. The reference every committer is held to (the contract
tests and the hypothesis state machine run on each)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from .._base import Change, Origin
from ._seam import Announce

if TYPE_CHECKING:
    from .._mirror import Mirror

__all__ = ["MemoryCommitter"]


class MemoryCommitter:
    url = "memory://"
    shared = False
    lock_factory: Callable[[str, threading.RLock], Any] | None = None

    def bind(self, mirror: Mirror, announce: Announce, origin: Callable[[], Origin]) -> None:
        self._mirror = mirror  # nothing is made elsewhere: announce and origin are not needed
        # The hot path, with no frame of ours: the mirror checks and applies.
        self.commit_one = mirror.apply_one  # type: ignore[method-assign]

    def open(self) -> None:
        pass

    @property
    def used(self) -> bool:
        return self._mirror.seq > 0

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
        mirror = self._mirror
        with mirror.lock:
            if mirror.exclusive is not None:
                mirror.wait_turn()
            if not mirror.still(expected, since, conflicts):
                return None
            return mirror.apply(writes, deletes, tokens, who)

    def commit_one(
        self, key: str, expected: int, value: Any, token: Any, who: str, respect: bool
    ) -> Change | None:
        return self._mirror.apply_one(key, expected, value, token, who)

    def confirm(self, key: str, version: int) -> bool:
        return self._mirror.entry(key)[1] == version

    def lagged(self, seen: int) -> bool:
        return False  # the mirror is the state: never behind

    def position(self) -> int:
        return self._mirror.seq

    def head(self) -> int:
        return self._mirror.seq

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "<MemoryCommitter>"
