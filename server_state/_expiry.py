"""Keys that expire: lifetimes, where their deadlines live, and the clock
that fires them.

A key with a lifetime has a companion key, ``DEADLINE + key``, one of the
library's own (``_keys.HIDDEN``), holding ``(deadline, idle)``: the Unix time
at which the key expires, and for an idle lifetime its length in seconds
(None for a lifetime that ends at a fixed time). The companion is written in
the same commit as the key, so it is stored, shared, restored after a restart
and moved by ``dump``/``load`` exactly as the key is, by every backend, and
nothing else needs to know about it.

- Every change of a key whose companion holds an idle lifetime moves the
  deadline (``idle`` seconds from that commit); reading never does.
- The expiry is a commit like any other: it deletes the key and its companion
  if both are still at the versions the clock saw, so among the processes that
  share a state exactly one expiry lands, and a write that crosses it either
  lands on the live key (the expiry then conflicts and looks again) or, once
  the key is gone, creates it again.

``Lifetimes`` holds what the app declared in this process (``expire_keys``,
typed keys); ``Clock`` is the thread that wakes at the next deadline.
No Streamlit import here.
"""

from __future__ import annotations

import datetime
import heapq
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ._errors import ServerStateTypeError
from ._keys import HIDDEN

__all__ = ["DEADLINE", "Clock", "Lifetime", "Lifetimes", "lifetime", "parse_stored"]

_LOG = logging.getLogger("server_state")

DEADLINE = HIDDEN + "expire" + HIDDEN
"""The prefix of a key's companion: ``DEADLINE + key``."""


class Lifetime(NamedTuple):
    """A key's lifetime: ``idle`` seconds without a change, or until ``at``
    (a Unix time)."""

    idle: float | None
    at: float | None

    def stored(self, now: float) -> tuple[float, float | None]:
        """The companion's value for a change committed at ``now``."""
        if self.idle is not None:
            return (now + self.idle, self.idle)
        assert self.at is not None
        return (self.at, None)


def lifetime(where: str, idle: object, at: object) -> Lifetime | None:
    """The lifetime ``idle=``/``at=`` name (None when neither is given), or a
    ``ServerStateTypeError`` saying what to pass; ``where`` names the call."""
    if idle is None and at is None:
        return None
    if idle is not None and at is not None:
        raise ServerStateTypeError(
            None, f"{where}: give idle= (seconds without a change) or at= (a time), not both."
        )
    if idle is not None:
        seconds: float
        if isinstance(idle, datetime.timedelta):
            seconds = idle.total_seconds()
        elif isinstance(idle, (int, float)) and not isinstance(idle, bool):
            seconds = float(idle)
        else:
            raise ServerStateTypeError(
                None,
                f"{where}: idle= must be a number of seconds or a datetime.timedelta, got {idle!r} "
                f"({type(idle).__name__}).",
            )
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ServerStateTypeError(
                None, f"{where}: idle= must be more than 0 seconds and finite, got {idle!r}."
            )
        return Lifetime(seconds, None)
    if isinstance(at, datetime.datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ServerStateTypeError(
                None,
                f"{where}: at={at!r} has no time zone, so its instant is ambiguous across servers; "
                "pass an aware datetime (datetime.now(timezone.utc) + timedelta(hours=1)) or a Unix time.",
            )
        return Lifetime(None, at.timestamp())
    if isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at):
        return Lifetime(None, float(at))
    raise ServerStateTypeError(
        None,
        f"{where}: at= must be a time zone-aware datetime or a Unix time in seconds, got {at!r} "
        f"({type(at).__name__}).",
    )


class Lifetimes:
    """What the app declared in this process: lifetimes of keys by name
    (typed keys) and of families of keys by prefix (``expire_keys``)."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self) -> None:
        self._exact: dict[str, Lifetime] = {}
        self._prefixes: tuple[tuple[str, Lifetime], ...] = ()  # longest prefix first

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes)

    def declare(self, key: str, life: Lifetime | None) -> None:
        if life is None:
            self._exact.pop(key, None)
        else:
            self._exact[key] = life

    def declare_prefix(self, prefix: str, life: Lifetime | None) -> None:
        rest = [(p, lt) for p, lt in self._prefixes if p != prefix]
        if life is not None:
            rest.append((prefix, life))
        self._prefixes = tuple(sorted(rest, key=lambda item: -len(item[0])))

    def of(self, key: str) -> Lifetime | None:
        life = self._exact.get(key)
        if life is not None:
            return life
        for prefix, life in self._prefixes:
            if key.startswith(prefix):
                return life
        return None


class Clock:
    """A daemon thread that calls ``fire(key)`` once ``key``'s deadline
    (as last ``schedule``d) has passed. ``fire`` decides: it reads the
    companion again, commits the expiry or schedules the key again."""

    def __init__(self, fire: Callable[[str], None], now: Callable[[], float] = time.time) -> None:
        self._fire = fire
        self._now = now
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # key -> the deadline it is in the heap for
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, key: str, deadline: float) -> None:
        with self._cond:
            if self._due.get(key) == deadline:
                return
            self._due[key] = deadline
            heapq.heappush(self._heap, (deadline, key))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="server_state expiry", daemon=True)
                self._thread.start()
            if self._heap[0] == (deadline, key):
                self._cond.notify()

    def forget(self, key: str) -> None:
        with self._cond:
            self._due.pop(key, None)  # its heap entry is skipped when it comes up

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
                        heapq.heappop(self._heap)  # rescheduled or forgotten since
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - self._now()
                    if wait <= 0:
                        _, key = heapq.heappop(self._heap)
                        del self._due[key]
                        break
                    self._cond.wait(min(wait, 3600.0))
            try:
                self._fire(key)
            except Exception:  # a backend fault: try again a little later
                _LOG.exception("server_state could not expire %r", key)
                self.schedule(key, self._now() + 1.0)


def parse_stored(value: Any) -> tuple[float, float | None] | None:
    """A companion's value as ``(deadline, idle)``, None when it is not one."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (int, float)):
        idle = value[1]
        if idle is None or isinstance(idle, (int, float)):
            return float(value[0]), None if idle is None else float(idle)
    return None
