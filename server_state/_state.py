"""The facade users touch: ``server_state``, its locks, ``no_rerun`` and
``force_rerun_bound_sessions``. It wires the store (values, versions), the
binding tracker (who showed what) and the Streamlit adapter (runs, reruns).

Every call out (a rerun request, a watcher, the user's ``fn``) happens with
no internal lock held: the store and the tracker hand back what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pyrsistent import PMap

from . import _streamlit as adapter
from ._errors import (
    RerunSuppressedError,
    ServerStateKeyError,
    ServerStateTypeError,
)
from ._locks import KeyLocks
from ._scheduler import RerunScheduler, suppressed
from ._store import MISSING, MemoryStore, StoreState
from ._tracker import BindingTracker, current_run
from ._values import FrozenDict, FrozenList, freeze, is_persistent, read_form

__all__ = ["NoRerun", "ServerState", "Snapshot"]

_FAST_READ = frozenset({type(None), bool, int, float, str, bytes, FrozenList, FrozenDict, tuple, frozenset})


def _check_key(key: object) -> str:
    if type(key) is not str:
        if isinstance(key, str):
            return str(key)
        raise ServerStateTypeError(
            None,
            f"server_state keys must be str, got {key!r} ({type(key).__name__}); "
            f"use server_state[str(key)] if you meant its text.",
        )
    return key


class NoRerun:
    """``with no_rerun:`` writes inside announce nothing: versions advance and
    other sessions see the new values on their next run. Nestable; per thread
    and per asyncio task (a ContextVar)."""

    def __enter__(self) -> None:
        suppressed.set(suppressed.get() + 1)

    def __exit__(self, *exc: object) -> None:
        suppressed.set(suppressed.get() - 1)

    @property
    def active(self) -> bool:
        return suppressed.get() > 0


class ServerState:
    """One state for every session of the app. Reads bind the running session
    to the key; a change reruns every other session that showed it."""

    __slots__ = ("_coord", "_locks", "_read_cache", "_store", "_tracker")
    _store: MemoryStore
    _tracker: BindingTracker
    _locks: KeyLocks
    _coord: RerunScheduler
    _read_cache: dict[str, tuple[tuple[Any, Any], ...]]

    def __init__(self, store: MemoryStore | None = None) -> None:
        setter = object.__setattr__
        setter(self, "_store", store if store is not None else MemoryStore())
        setter(self, "_tracker", BindingTracker())
        setter(self, "_locks", KeyLocks())
        setter(self, "_coord", RerunScheduler(self._tracker, self._store))
        setter(self, "_read_cache", {})

    # -- reading -----------------------------------------------------------------

    def _bind(self, key: str, version: int) -> None:
        run = current_run.get()
        if run is None:
            run = self._coord.run_for_current_thread()
            if run is None:
                return
        in_callback, scope = adapter.current_read_scope()
        if not in_callback:  # callbacks render nothing: the body reads again
            self._tracker.bind(run, scope, key, version)

    def _readable(self, key: str, value: Any) -> Any:
        """The read form: the value itself, except for pyrsistent values,
        converted once per stored object (that is, once per key-version)."""
        if type(value) in _FAST_READ or not is_persistent(value):
            return value
        # The newest two stored objects of the key: the live value and the one
        # an older snapshot shows, each converted once.
        cached = self._read_cache.get(key, ())
        for stored, readable in cached:
            if stored is value:
                return readable
        readable = read_form(value, key)
        self._read_cache[key] = ((value, readable), *cached[:1])
        return readable

    def __getitem__(self, key: str) -> Any:
        if type(key) is not str:
            key = _check_key(key)
        value, version = self._store.entry(key)
        self._bind(key, version)
        if value is MISSING:
            raise ServerStateKeyError(
                key,
                f"server_state has no key {key!r}: set it first (server_state[{key!r}] = ...), "
                f"or read with server_state.get({key!r}, default).",
            )
        if type(value) in _FAST_READ:
            return value
        return self._readable(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        if type(key) is not str:
            key = _check_key(key)
        value, version = self._store.entry(key)
        self._bind(key, version)
        return default if value is MISSING else self._readable(key, value)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        value, version = self._store.entry(key)
        self._bind(key, version)
        return value is not MISSING

    def peek(self, key: str, default: Any = None) -> Any:
        """Read without binding: this session is not rerun when ``key`` changes."""
        key = _check_key(key)
        value = self._store.entry(key)[0]
        return default if value is MISSING else self._readable(key, value)

    def version(self, key: str) -> int:
        """The key's version: advances on every real change (deletes included); 0 if never set."""
        return self._store.version(_check_key(key))

    def snapshot(self, *keys: str) -> Snapshot:
        """A consistent, immutable view of the state (or of ``keys``) at one
        instant, taken in O(1). Reading a key from it binds the session."""
        for key in keys:
            _check_key(key)
        return Snapshot(self, self._store.state, frozenset(keys) if keys else None)

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        """The keys set now, in the order they were first set."""
        return self._store.keys()

    def values(self) -> list[Any]:
        return [self[k] for k in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in self.keys()]

    def __repr__(self) -> str:
        return f"<server_state with {len(self)} keys: {', '.join(map(repr, self.keys()[:10]))}>"

    # -- writing -----------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        key = _check_key(key)
        change = self._store.set(key, freeze(value, key))
        if change is not None:
            self._coord.announce((change,))

    def __delitem__(self, key: str) -> None:
        key = _check_key(key)
        change = self._store.delete(key)
        self._read_cache.pop(key, None)
        self._coord.announce((change,))

    def update(self, key: str, fn: Callable[[Any], Any], default: Any = MISSING) -> Any:
        """Atomically replace ``key``'s value with ``fn(value)`` and return it.

        ``fn`` receives the stored form (a pyrsistent value when you stored
        one, so appending to a large ``pvector`` is O(log n)) and must be pure:
        when another writer got in first it is called again with the newer
        value. Holds ``server_state_lock[key]`` meanwhile, so it is atomic
        with code that uses that lock too. A missing key uses ``default``, or
        raises ``KeyError`` when none is given.
        """
        if type(key) is not str:
            key = _check_key(key)
        if not callable(fn):
            raise ServerStateTypeError(
                key, f"server_state.update({key!r}, fn): fn must be callable, got {type(fn).__name__}."
            )
        with self._locks.get(key):
            new, change = self._store.update(key, fn, default)
        if change is not None:
            self._coord.announce((change,))
        return new

    def transact(self, fn: Callable[[PMap[str, Any]], PMap[str, Any]]) -> PMap[str, Any]:
        """Atomically apply ``fn`` to the whole state, a pyrsistent map of
        stored forms, e.g. ``lambda s: s.set("a", s["a"] - 1).set("b", s["b"] + 1)``.
        Retried like ``update`` if anything changed while ``fn`` ran; only keys
        whose value changed advance. Returns the committed map."""
        if not callable(fn):
            raise ServerStateTypeError(
                None, f"server_state.transact(fn): fn must be callable, got {type(fn).__name__}."
            )
        result, changes = self._store.transact(fn, guard=self._locks.holding)
        if changes:
            self._coord.announce(changes)
        return result

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Set ``key`` to ``default`` unless it is set, atomically; return its value."""
        key = _check_key(key)
        self.update(key, lambda value: value, default)
        return self[key]

    def watch(self, keys: str | Iterable[str] | None, callback: Callable[[str, Any, Any], None]) -> Callable[[], None]:
        """Call ``callback(key, old, new)`` after every commit that changes one
        of ``keys`` (all keys when None), in the writer's thread, with no lock
        held; ``old``/``new`` are stored forms, ``MISSING`` when absent.
        Returns a function that unsubscribes."""
        if isinstance(keys, str):
            keys = (keys,)
        if keys is not None:
            keys = tuple(_check_key(k) for k in keys)
        if not callable(callback):
            raise ServerStateTypeError(None, "server_state.watch(keys, callback): callback must be callable.")
        return self._store.watch(keys, callback)

    def force_rerun(self, key: str) -> None:
        key = _check_key(key)
        if suppressed.get() > 0:
            raise RerunSuppressedError(
                key,
                f"force_rerun_bound_sessions({key!r}) was called inside `with no_rerun:`, "
                "which suppresses reruns; call it after the block.",
            )
        if self._store.entry(key)[0] is MISSING:
            raise ServerStateKeyError(
                key, f"force_rerun_bound_sessions({key!r}): server_state has no key {key!r}; set it first."
            )
        self._coord.announce((self._store.touch(key),))

    def stats(self) -> dict[str, int]:
        """Counters for diagnostics: live sessions tracked, reruns requested,
        rerun loops stopped, keys set."""
        return {
            "keys": len(self),
            "sessions": self._tracker.session_count(),
            "reruns_requested": self._tracker.reruns_requested,
            "loops_stopped": self._tracker.loops_stopped,
        }

    def bound_sessions(self, key: str) -> int:
        """How many live sessions showed ``key`` in their latest run."""
        return self._tracker.bound_sessions(_check_key(key))

    # -- attribute style: server_state.count ----------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except ServerStateKeyError as exc:
            raise _AttributeKeyError(name, str(exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(type(self), name):
            raise ServerStateTypeError(
                name,
                f"server_state.{name} is a method and cannot be assigned; "
                f"use item syntax for a key named {name!r}: server_state[{name!r}] = ...",
            )
        self[name] = value

    def __delattr__(self, name: str) -> None:
        if hasattr(type(self), name):
            raise ServerStateTypeError(
                name, f"server_state.{name} is a method; use del server_state[{name!r}] for a key of that name."
            )
        del self[name]


class _AttributeKeyError(ServerStateKeyError, AttributeError):
    """``server_state.missing``: a KeyError (as upstream) and an AttributeError
    (so ``hasattr`` and ``getattr(..., default)`` work)."""


class Snapshot(Mapping[str, Any]):
    """The state at one instant. Reads bind the session at that instant, so
    it reruns if a key it showed from the snapshot has advanced since."""

    __slots__ = ("_keys", "_owner", "_state")

    def __init__(self, owner: ServerState, state: StoreState, keys: frozenset[str] | None) -> None:
        self._owner = owner
        self._state = state
        self._keys = keys

    @property
    def seq(self) -> int:
        """The commit this snapshot shows."""
        return self._state.seq

    def _allowed(self, key: str) -> None:
        if self._keys is not None and key not in self._keys:
            raise ServerStateKeyError(
                key, f"this snapshot was taken of {sorted(self._keys)!r} only; {key!r} is not in it."
            )

    def __getitem__(self, key: str) -> Any:
        if type(key) is not str:
            key = _check_key(key)
        self._allowed(key)
        value = self._state.values.get(key, MISSING)
        self._owner._bind(key, self._state.seq)
        if value is MISSING:
            raise ServerStateKeyError(key, f"the snapshot has no key {key!r}.")
        return self._owner._readable(key, value)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or (self._keys is not None and key not in self._keys):
            return False
        self._owner._bind(key, self._state.seq)
        return key in self._state.values

    def __iter__(self) -> Iterator[str]:
        keys = self._state.values.keys()
        return iter([k for k in keys if self._keys is None or k in self._keys])

    def __len__(self) -> int:
        if self._keys is None:
            return len(self._state.values)
        return sum(1 for k in self._keys if k in self._state.values)

    def __repr__(self) -> str:
        return f"<server_state snapshot at commit {self._state.seq}: {len(self)} keys>"
