"""The in-memory store: a persistent map swapped atomically.

A snapshot is one immutable ``StoreState`` (a pyrsistent map of values and the
commit sequence it shows): O(1) to take, consistent by construction. Writers
compute outside any lock and hold the root lock only to compare and swap.
Versions are commit sequence numbers, so they only grow, for every key, across
deletes.

No Streamlit import here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap

from ._errors import ServerStateKeyError, ServerStateTypeError
from ._values import freeze, unchanged

__all__ = ["MISSING", "Change", "MemoryStore", "StoreState", "Watcher", "store_from_url"]

_LOG = logging.getLogger("server_state")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class StoreState(NamedTuple):
    """One instant of the store: never mutated.

    A key's value in it is at most ``seq`` old, so a reader of a snapshot is
    bound at ``seq``: stale exactly when the key advanced after the snapshot."""

    values: PMap[str, Any]  # key -> stored value
    seq: int  # the last commit's sequence number


class Change(NamedTuple):
    """One key's change in a commit. ``old``/``new`` are stored forms or MISSING."""

    key: str
    old: Any
    new: Any
    version: int


Watcher = Callable[[str, Any, Any], None]

_ABSENT: tuple[Any, int] = (MISSING, 0)
_new = tuple.__new__


class MemoryStore:
    """The default backend: one process, many threads.

    Under the root lock a commit updates ``_latest`` (a plain dict of
    ``key -> (value, version)``, deleted keys included: O(1) reads of the
    newest value) and records the write in ``_pending``. The persistent map
    (``_values``) takes the pending writes, all in one evolver pass, when a
    snapshot or a transaction asks for it: a write costs dict operations
    (pyrsistent's ``PMap.set`` is ~3 µs of Python), a snapshot with no write
    since the last one returns the same ``StoreState`` (O(1))."""

    def __init__(self) -> None:
        self._values: PMap[str, Any] = pmap()
        self._pending: dict[str, Any] = {}  # writes not yet in _values (MISSING: deleted)
        self._snapshot: StoreState | None = StoreState(self._values, 0)
        self._seq = 0
        self._size = 0
        self._latest: dict[str, tuple[Any, int]] = {}
        self._root_lock = threading.Lock()
        self._watchers: dict[str | None, list[_Subscription]] = {}
        self._watchers_lock = threading.Lock()

    # -- reads: lock-free -------------------------------------------------------

    @property
    def state(self) -> StoreState:
        """The state at the newest commit, as one immutable value."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._root_lock:
            if self._snapshot is None:
                if self._pending:
                    before = self._values
                    evolver = before.evolver()
                    for key, value in self._pending.items():
                        if value is not MISSING:
                            evolver[key] = value
                        elif key in before:  # set and deleted since: never in the map
                            del evolver[key]
                    self._values = evolver.persistent()
                    self._pending = {}
                self._snapshot = StoreState(self._values, self._seq)
            return self._snapshot

    def __len__(self) -> int:
        return self._size

    def entry(self, key: str) -> tuple[Any, int]:
        """``(stored value or MISSING, version)`` of the newest commit."""
        return self._latest.get(key, _ABSENT)

    def version(self, key: str) -> int:
        return self._latest.get(key, _ABSENT)[1]

    def keys(self) -> list[str]:
        """Present keys in first-set order (``list()`` copies the dict in one step)."""
        return [k for k, (v, _) in list(self._latest.items()) if v is not MISSING]

    # -- writes ---------------------------------------------------------------

    def set(self, key: str, value: Any) -> Change | None:
        """Store ``value`` (already frozen). Returns the change, or None when
        nothing changed. Write methods return changes and call nobody: the
        caller notifies watchers once it holds no lock."""
        while True:
            old, version = self._latest.get(key, _ABSENT)
            if old is not MISSING and unchanged(old, value):
                return None
            change = self._commit_one(key, version, value)
            if change is not None:
                return change

    def touch(self, key: str) -> Change:
        """Advance ``key``'s version keeping its newest value: an in-place
        change of an object stored by reference, announced by the caller."""
        while True:
            value, version = self._latest.get(key, _ABSENT)
            if value is MISSING:
                raise ServerStateKeyError(key, f"server_state has no key {key!r}; set it first.")
            change = self._commit_one(key, version, value)
            if change is not None:
                return change

    def delete(self, key: str) -> Change:
        while True:
            old, version = self._latest.get(key, _ABSENT)
            if old is MISSING:
                raise ServerStateKeyError(
                    key,
                    f"server_state has no key {key!r} to delete; "
                    f"check with `{key!r} in server_state` first.",
                )
            changes = self._commit({key: version}, {}, (key,))
            if changes is not None:
                return changes[0]

    def update(
        self, key: str, fn: Callable[[Any], Any], default: Any = MISSING
    ) -> tuple[Any, Change | None]:
        """Compare-and-set: ``fn(current)`` is computed outside every lock and
        committed only if ``key`` did not change meanwhile, else retried."""
        while True:
            current, version = self._latest.get(key, _ABSENT)
            exists = current is not MISSING
            if not exists:
                if default is MISSING:
                    raise ServerStateKeyError(
                        key,
                        f"server_state has no key {key!r} to update; pass a default "
                        f"(server_state.update({key!r}, fn, default=0)) or assign it first.",
                    )
                current = freeze(default, key)
            new = freeze(fn(current), key)
            if exists and unchanged(current, new):
                if self._latest.get(key, _ABSENT)[1] == version:
                    return current, None
                continue
            change = self._commit_one(key, version, new)
            if change is not None:
                return new, change

    def transact(
        self,
        fn: Callable[[PMap[str, Any]], PMap[str, Any]],
        guard: Callable[[list[str]], AbstractContextManager[None]] = lambda keys: nullcontext(),
    ) -> tuple[PMap[str, Any], tuple[Change, ...]]:
        """Multi-key compare-and-set over the whole map: retried if anything
        was committed while ``fn`` ran, since we cannot know what ``fn`` read.
        ``guard(keys)`` is held around the commit (the facade's per-key locks,
        so a transaction never lands inside a locked read-modify-write)."""
        while True:
            state = self.state
            result = fn(state.values)
            if not isinstance(result, PMap):
                raise ServerStateTypeError(
                    None,
                    "server_state.transact(fn): fn must return the map it was given, changed "
                    f"with .set()/.remove() (a pyrsistent PMap); it returned {type(result).__name__}.",
                )
            if result is state.values:
                return result, ()
            writes: dict[str, Any] = {}
            for key, value in result.items():
                if not isinstance(key, str):
                    raise ServerStateTypeError(
                        None,
                        f"server_state keys must be str; transact(fn) set the key {key!r} "
                        f"({type(key).__name__}).",
                    )
                old = state.values.get(key, MISSING)
                if old is value:
                    continue
                frozen = freeze(value, key)
                if old is MISSING or not unchanged(old, frozen):
                    writes[key] = frozen
            deletes = tuple(k for k in state.values if k not in result)
            if not writes and not deletes:
                return state.values, ()
            with guard([*writes, *deletes]):
                changes = self._commit(None, writes, deletes, seen_state=state)
            if changes is not None:
                return self.state.values, changes

    def _commit_one(self, key: str, expected: int, value: Any) -> Change | None:
        """``_commit`` for one key set: the hot path of every write."""
        with self._root_lock:
            latest = self._latest
            old, version = latest.get(key, _ABSENT)
            if version != expected:
                return None
            seq = self._seq = self._seq + 1
            latest[key] = (value, seq)
            self._pending[key] = value
            if old is MISSING:
                self._size += 1
            self._snapshot = None
        return _new(Change, (key, old, value, seq))  # Change(...) without NamedTuple's Python __new__

    def _commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        seen_state: StoreState | None = None,
    ) -> tuple[Change, ...] | None:
        """Apply the writes if the expected versions (or, for a transaction,
        the whole state) are unchanged; None tells the caller to retry."""
        with self._root_lock:
            latest = self._latest
            if seen_state is not None:
                if self._seq != seen_state.seq:
                    return None
            elif expected is not None:
                for key, version in expected.items():
                    if latest.get(key, _ABSENT)[1] != version:
                        return None
            seq = self._seq + 1
            changes = []
            pending = self._pending
            for key, value in writes.items():
                old = latest.get(key, _ABSENT)[0]
                changes.append(Change(key, old, value, seq))
                latest[key] = (value, seq)
                pending[key] = value
                if old is MISSING:
                    self._size += 1
            for key in deletes:
                changes.append(Change(key, latest[key][0], MISSING, seq))
                latest[key] = (MISSING, seq)
                pending[key] = MISSING
                self._size -= 1
            self._seq = seq
            self._snapshot = None
        return tuple(changes)

    # -- watchers ---------------------------------------------------------------

    def watch(self, keys: Iterable[str] | None, callback: Watcher) -> Callable[[], None]:
        """Subscribe ``callback`` to changes of ``keys`` (all keys when None);
        returns the function that ends this one subscription."""
        slots: tuple[str | None, ...] = (None,) if keys is None else tuple(keys)
        subscription = _Subscription(callback)
        with self._watchers_lock:
            for slot in slots:
                self._watchers[slot] = [*self._watchers.get(slot, ()), subscription]

        def unsubscribe() -> None:
            with self._watchers_lock:
                for slot in slots:
                    rest = [sub for sub in self._watchers.get(slot, ()) if sub is not subscription]
                    if rest:
                        self._watchers[slot] = rest
                    else:
                        self._watchers.pop(slot, None)

        return unsubscribe

    @property
    def has_watchers(self) -> bool:
        return bool(self._watchers)

    def notify(self, changes: Iterable[Change]) -> None:
        """Call the watchers of ``changes``. Call with no lock held."""
        watchers = self._watchers  # lists are replaced, never mutated: no lock needed
        if not watchers:
            return
        for change in changes:
            for sub in (*watchers.get(change.key, ()), *watchers.get(None, ())):
                try:
                    sub.callback(change.key, change.old, change.new)
                except Exception:
                    _LOG.exception("server_state watcher %r failed for key %r", sub.callback, change.key)


@dataclass(frozen=True, slots=True, eq=False)
class _Subscription:
    callback: Watcher


def store_from_url(url: str | None) -> MemoryStore:
    """The backend a ``SERVER_STATE_URL`` names: ``memory://`` (the default)."""
    if not url or url.startswith("memory://"):
        return MemoryStore()
    from ._errors import ServerStateError

    raise ServerStateError(
        f"SERVER_STATE_URL={url!r}: this version of server_state keeps the state in the "
        "server's memory only (memory://); unset SERVER_STATE_URL or set it to memory://."
    )
