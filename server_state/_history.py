"""History: the last commits, to list, to look at and to go back to.

Each commit the store applies (made here, or in another replica and
followed) is recorded as a ``Record``: its sequence (the version it gave the
keys it changed), its time, who made it, and its ``Change`` tuples, which
hold the stored value of each key before and after. Values are persistent or
frozen, so a record keeps the old objects themselves, never copies: what
history costs in memory is what the commits changed (a pvector append keeps
one new tail node per commit), not the size of the state times the number of
commits kept.

The state after an older commit is the state now with the newer commits
undone, newest first (``undo``): O(keys those commits changed · log n),
whatever the size of the state. Recording is O(1) under the store's root
lock; the bound is a count (a ``deque`` with ``maxlen``) and an age, checked
at each record.

No Streamlit import here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

from pyrsistent import PMap

from ._base import Change
from ._keys import HIDDEN

__all__ = ["HISTORY_AGE", "HISTORY_LIMIT", "Change", "History", "Record", "keys_of", "undo"]

# The defaults: small, since a record keeps the values it replaced alive (a
# DataFrame replaced every second is kept HISTORY_LIMIT times).
HISTORY_LIMIT = 100
HISTORY_AGE = 600.0  # seconds

# Commits of the library's own keys alone kept aside, besides 10 per commit of
# the limit (heartbeats, deadlines moved on; bounded by the age too).
ASIDE_KEPT = 1_000

_time = time.time
_new = tuple.__new__


def _seq(record: tuple[Any, ...]) -> int:
    return record[0]  # type: ignore[no-any-return]


class Record(NamedTuple):
    seq: int
    time: float  # time.time() when applied here
    origin: str  # "session <id>", "thread <name>", "<replica> · session <id>", "resync from Redis"
    changes: tuple[Change, ...]


class History:
    """The bounded list of records; ``record`` is called under the store's
    root lock, the readers copy under it (``records``).

    Commits that change only the library's own keys (a replica's heartbeat, a
    deadline moved on) are kept aside: ``at`` and ``revert`` undo them as any
    commit, but they are not listed and do not push the app's commits out of
    the ``limit`` (a heartbeat every few seconds would otherwise leave an
    idle app no history at all)."""

    __slots__ = ("_aside", "_records", "limit", "max_age")

    def __init__(self, limit: int = HISTORY_LIMIT, max_age: float = HISTORY_AGE) -> None:
        self.limit = 0
        self.max_age = max_age
        self._records: deque[tuple[Any, ...]] = deque(maxlen=1)
        self._aside: deque[tuple[Any, ...]] = deque(maxlen=1)
        self.configure(limit, max_age)

    def configure(self, limit: int, max_age: float) -> None:
        if type(limit) is not int or limit < 0:
            raise ValueError(
                f"server_state: the history limit must be an int >= 0 (0 keeps none), got {limit!r}."
            )
        if not isinstance(max_age, (int, float)) or max_age <= 0:
            raise ValueError(
                f"server_state: the history age must be a number of seconds > 0, got {max_age!r}."
            )
        self.limit, self.max_age = limit, float(max_age)
        self._records = deque(self._records, maxlen=max(limit, 1))
        self._aside = deque(self._aside, maxlen=ASIDE_KEPT + 10 * limit)
        if not limit:
            self._records.clear()
            self._aside.clear()

    def record(self, seq: int, changes: tuple[Change, ...], origin: str) -> None:
        now = _time()
        records = self._records
        if all(change.key[:1] == HIDDEN for change in changes):
            records = self._aside
        records.append((seq, now, origin, changes))  # a plain tuple: Record(...) costs 4x more
        oldest = now - self.max_age
        while records[0][1] < oldest:
            records.popleft()

    def record_one(self, seq: int, key: str, old: Any, new: Any, origin: str) -> None:
        """``record`` of a one-key commit (most are), kept flat as
        ``(seq, time, origin, key, old, new)``: 104 bytes less than a
        ``Change`` in a tuple, which is what keeps 10,000 appends to a long
        pvector under twice the memory of one copy."""
        now = _time()
        records = self._records if key[:1] != HIDDEN else self._aside
        records.append((seq, now, origin, key, old, new))
        oldest = now - self.max_age
        while records[0][1] < oldest:
            records.popleft()

    def restore(self, records: list[Record]) -> None:
        """Records kept elsewhere (a durable backend's log), oldest first,
        before any new one: what a restart brings back."""
        for record in records:
            aside = all(change.key[:1] == HIDDEN for change in record.changes)
            (self._aside if aside else self._records).append(tuple(record))
        oldest = _time() - self.max_age
        for records_ in (self._records, self._aside):
            while records_ and records_[0][1] < oldest:
                records_.popleft()

    def records(self, key: str | None = None, limit: int | None = None) -> list[Record]:
        """The records (of commits that changed ``key``), newest first, at
        most ``limit``; O(records looked at). Call under the store's root lock."""
        out: list[Record] = []
        if limit is not None and limit <= 0:
            return out
        for record in reversed(self._records):
            if key is None or key in keys_of(record):
                out.append(_as_record(record))
                if len(out) == limit:
                    break
        return out

    def span(self) -> tuple[int, int] | None:
        """The first and last seq kept, or None."""
        records = self._records
        return (records[0][0], records[-1][0]) if records else None

    def newer(self, seq: int, upto: int) -> list[tuple[Any, ...]]:
        """The records of the commits after ``seq`` up to ``upto``, newest
        first, those kept aside with them; O(those). Call under the store's
        root lock."""
        out = []
        for records in (self._records, self._aside):
            for record in reversed(records):
                if record[0] <= seq:
                    break
                if record[0] <= upto:
                    out.append(record)
        if self._aside:
            out.sort(key=_seq, reverse=True)
        return out

    def clear(self) -> None:
        self._records.clear()
        self._aside.clear()


def keys_of(record: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys a kept record (flat or not) changed."""
    if len(record) == 6:
        return (record[3],)
    return tuple(change.key for change in record[3])


def _as_record(record: tuple[Any, ...]) -> Record:
    if len(record) == 6:
        seq, time, origin, key, old, new = record
        return _new(Record, (seq, time, origin, (_new(Change, (key, old, new, seq)),)))
    return _new(Record, record)


def undo(values: PMap[str, Any], newer: Iterable[tuple[Any, ...]], missing: Any) -> PMap[str, Any]:
    """``values`` with the commits ``newer`` (newest first) undone."""
    evolver = values.evolver()
    for record in newer:
        olds = ((record[3], record[4]),) if len(record) == 6 else ((c.key, c.old) for c in record[3])
        for key, old in olds:
            if old is missing:
                if key in evolver:  # type: ignore[operator]
                    del evolver[key]
            else:
                evolver[key] = old
    return evolver.persistent()
