"""The facade users touch: ``server_state``, its locks, ``no_rerun`` and
``force_rerun_bound_sessions``. It wires the store (values, versions), the
binding tracker (who showed what) and the Streamlit adapter (runs, reruns).

Every call out (a rerun request, a watcher, the user's ``fn``) happens with
no internal lock held: the store and the tracker hand back what to do.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar, overload

from pyrsistent import PMap, pmap

from . import _locks
from . import _streamlit as adapter
from ._base import MISSING, Change, Origin, StoreState
from ._errors import (
    RerunSuppressedError,
    ServerStateError,
    ServerStateKeyError,
    ServerStateTypeError,
)
from ._expiry import DEADLINE, lifetime, parse_stored
from ._history import Record
from ._keys import HIDDEN, check_key
from ._locks import KeyLocks
from ._presence import Member, Presence
from ._scheduler import RerunScheduler, suppressed
from ._store import MemoryStore, Store, refuse_missing, store_from_url
from ._tracker import EVERY_KEY, BindingTracker
from ._typed import Key, KeySpec, check_transact, check_update, register
from ._values import (
    FrozenCounter,
    FrozenDefaultDict,
    FrozenDeque,
    FrozenDict,
    FrozenList,
    freeze,
    is_persistent,
    read_form,
)

__all__ = ["Commit", "NoRerun", "ServerState", "Snapshot"]

# Stored forms that are their own read form: returned as they are.
_FAST_READ = frozenset(
    {type(None), bool, int, float, str, bytes, tuple, frozenset}
    | {FrozenList, FrozenDict, FrozenDeque, FrozenCounter, FrozenDefaultDict}
)

_check_key = check_key  # the name the package and its tests import

_T = TypeVar("_T")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")


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
    to the key; a change reruns every other session that showed it.

    A ``MutableMapping`` (registered, not inherited: ``keys()``, ``values()``
    and ``items()`` return lists, and ``update`` has a second form, neither of
    which the ABC's signatures allow). Every method that writes several keys,
    or reads and writes one, is one atomic commit."""

    __slots__ = (
        "_convert_lock",
        "_coord",
        "_locks",
        "_presence",
        "_read_cache",
        "_store",
        "_tracker",
        "_typed",
    )
    _store: Store
    _tracker: BindingTracker
    _locks: KeyLocks
    _coord: RerunScheduler
    _read_cache: dict[str, tuple[tuple[Any, Any], ...]]
    _convert_lock: threading.Lock
    _typed: dict[str, KeySpec]
    _presence: Presence

    def __init__(self, store: Store | None = None) -> None:
        setter = object.__setattr__
        setter(self, "_store", store if store is not None else MemoryStore())
        setter(self, "_tracker", BindingTracker())
        setter(self, "_locks", KeyLocks())
        setter(self, "_coord", RerunScheduler(self._tracker, self._store))
        setter(self, "_read_cache", {})
        setter(self, "_convert_lock", threading.Lock())
        setter(self, "_typed", {})  # server_state.key(...) declarations, checked by every write
        setter(self, "_presence", Presence(lambda: self._store, self._bind, self._changed))
        self._plug(self._store)

    # -- the backend ---------------------------------------------------------------

    def _plug(self, store: Store) -> None:
        object.__setattr__(self, "_store", store)
        self._coord.store = store
        self._locks.factory = store.lock_factory
        store.attach(self._remote_changed, self._coord.origin, self._coord.writer)

    def _remote_changed(self, changes: tuple[Change, ...], origin: Origin) -> None:
        """A commit made in another replica, now in this one's mirror."""
        if self._read_cache:
            for change in changes:
                self._read_cache.pop(change.key, None)
        for change in changes:
            if change.new is MISSING:
                self._locks.discard(change.key)
        if self._store.mirror.hidden:
            self._presence.saw(changes)  # a replica's heartbeat that expired: its members leave
        self._coord.announce(changes, origin)

    def configure(
        self,
        url: str | None = None,
        *,
        namespace: str | None = None,
        serializer: str | None = None,
        signing_key: bytes | str | None = None,
        lease_ttl: float | None = None,
        history: int | None = None,
        history_age: float | None = None,
    ) -> None:
        """Choose where the state lives, before it is first used (else
        ``SERVER_STATE_URL`` and friends decide): ``url`` is ``memory://``
        (the default), ``sqlite:///path/state.db`` (a file that survives
        restarts, shared by the processes of one machine) or
        ``redis://host:6379/0`` (``rediss://``, ``unix://``);
        ``namespace`` separates apps sharing one Redis;
        ``serializer="pickle"`` needs a ``signing_key``; ``lease_ttl`` is how
        long a replica's ``server_state_lock`` survives a stalled holder.
        Calling it again with the same arguments changes nothing.

        ``history`` (commits kept, 0 for none; default 100) and
        ``history_age`` (seconds; default 600) bound ``history()``, ``at()``
        and ``revert()``; they may be changed at any time, alone."""
        if history is not None or history_age is not None:
            kept = self._store.history
            kept.configure(
                kept.limit if history is None else history,
                kept.max_age if history_age is None else history_age,
            )
            if url is None and all(v is None for v in (namespace, serializer, signing_key, lease_ttl)):
                return
        options = {
            k: v
            for k, v in (
                ("namespace", namespace),
                ("serializer", serializer),
                ("signing_key", signing_key),
                ("lease_ttl", lease_ttl),
            )
            if v is not None
        }
        wanted = (url or "memory://", tuple(sorted(options.items(), key=lambda kv: kv[0])))
        current = getattr(self._store, "configured", None) or (self._store.url, ())
        if wanted == current:
            return
        if self._store.used or len(self._locks):
            raise ServerStateError(
                "server_state.configure(...) must run before the state is first used (it was used "
                f"with {self._store.url.split('@')[-1]}); call it at the top of the app, before any "
                "read, write or lock, or set SERVER_STATE_URL instead."
            )
        store = store_from_url(url, **options)
        setattr(store, "configured", wanted)  # noqa: B010  (what configure asked for, to tell a repeat)
        old = self._store
        store.history.configure(old.history.limit, old.history.max_age)
        self._plug(store)
        old.close()

    # -- reading -----------------------------------------------------------------

    def _bind(self, key: str, version: int) -> None:
        run = self._tracker.current_run.get()
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
        for stored, readable in self._read_cache.get(key, ()):
            if stored is value:
                return readable
        # One conversion at a time: concurrent first reads of a new version
        # (every session rerun by the same write) wait for the first one.
        with self._convert_lock:
            cached = self._read_cache.get(key, ())
            for stored, readable in cached:
                if stored is value:
                    return readable
            readable = read_form(value, key)
            # Kept: the live value's read form, and one older one (what an older
            # snapshot shows). A write or delete of the key drops both, so a
            # replaced large value is not held by its read form.
            if self._store.entry(key)[0] is value:
                self._read_cache[key] = ((value, readable), *cached[:1])
            else:
                self._read_cache[key] = (*cached[:1], (value, readable))
        return readable

    def __getitem__(self, key: str) -> Any:
        if type(key) is not str:
            key = check_key(key)
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
            key = check_key(key)
        value, version = self._store.entry(key)
        self._bind(key, version)
        return default if value is MISSING else self._readable(key, value)

    def __contains__(self, key: object) -> bool:
        if type(key) is not str:
            if not isinstance(key, str):
                return False
            key = check_key(key)
        value, version = self._store.entry(key)
        self._bind(key, version)
        return value is not MISSING

    def _has(self, key: str) -> bool:
        """Whether ``key`` is set, binding nobody (for ``server_state_lock``)."""
        return self._store.entry(key)[0] is not MISSING

    def peek(self, key: str, default: Any = None) -> Any:
        """Read without binding: this session is not rerun when ``key`` changes."""
        key = check_key(key)
        value = self._store.entry(key)[0]
        return default if value is MISSING else self._readable(key, value)

    def version(self, key: str) -> int:
        """The key's version: advances on every real change (deletes included).
        0 if never set; for a deleted key, at least the version of its delete."""
        return self._store.version(check_key(key))

    def snapshot(self, *keys: str, bind_all: bool = False) -> Snapshot:
        """A consistent, immutable view of the state (or of ``keys``) at one
        instant, taken in O(1). Reading a key from it binds the session.
        ``bind_all=True``: the running session (its fragment) is bound to
        every key at that instant instead, so it reruns after any later
        commit, and reading from the snapshot binds nothing more (a page that
        shows the whole state: the inspector)."""
        if bind_all:
            if keys:
                raise ServerStateTypeError(
                    None, "server_state.snapshot(*keys, bind_all=True): bind_all takes no keys."
                )
            state = self._store.state
            self._bind(EVERY_KEY, state.seq)
            return Snapshot(self, state, None, bind=False)
        named = tuple(dict.fromkeys(check_key(key) for key in keys)) if keys else None
        return Snapshot(self, self._store.state, named)

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.keys())

    def keys(self) -> list[str]:
        """The keys set now, in the order they were first set."""
        return self._store.keys()

    def values(self) -> list[Any]:
        """The values at one instant (a snapshot), in ``keys()`` order."""
        snapshot = self.snapshot()
        return [snapshot[k] for k in snapshot]

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs at one instant (a snapshot), in ``keys()`` order."""
        snapshot = self.snapshot()
        return [(k, snapshot[k]) for k in snapshot]

    def __eq__(self, other: object) -> bool:
        """As a dict compares with a mapping, on one instant (a snapshot),
        so a commit made meanwhile cannot make it see half of each."""
        if other is self:
            return True
        if not isinstance(other, Mapping):
            return NotImplemented
        snapshot = self.snapshot()
        if len(snapshot) != len(other):
            return False
        return dict(snapshot.items()) == dict(other.items())

    # Defining __eq__ leaves __hash__ None: unhashable, as a dict.

    def __repr__(self) -> str:
        keys = self._store.keys()
        return f"<server_state with {len(keys)} keys: {', '.join(map(repr, keys[:10]))}>"

    # -- writing -----------------------------------------------------------------

    def _changed(self, changes: tuple[Change, ...]) -> None:
        """After a commit, with no lock held: forget what the old values
        needed, then announce."""
        if self._read_cache:
            for change in changes:
                self._read_cache.pop(change.key, None)
        for change in changes:
            if change.new is MISSING:
                self._locks.discard(change.key)
        self._coord.announce(changes)

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            key = check_key(key)
        if self._typed and (spec := self._typed.get(key)) is not None:
            spec.check(value)  # a declared key: type and validator, before anything is stored
        previous = self._store.entry(key)[0]
        if previous is MISSING and key[:1] == HIDDEN:
            _refuse_hidden(key)
        change = self._store.set(key, freeze(value, key, previous=previous))
        if change is not None:
            self._changed((change,))

    def set(self, key: str, value: Any, *, idle: Any = None, at: Any = None) -> None:
        """``server_state[key] = value``, with a lifetime: ``idle=`` seconds
        (or a ``timedelta``) without a change, or until ``at=`` (an aware
        ``datetime`` or a Unix time). Then the key is deleted by a commit of
        its own, which reruns the sessions that show it as any write does;
        every later change of it moves an idle deadline on. Without ``idle``
        or ``at`` it is the assignment (a lifetime the key has is kept)."""
        key = check_key(key)
        life = lifetime(f"server_state.set({key!r}, ...)", idle, at)
        if self._typed and (spec := self._typed.get(key)) is not None:
            spec.check(value)
        previous = self._store.entry(key)[0]
        if previous is MISSING and key[:1] == HIDDEN:
            _refuse_hidden(key)
        change = self._store.set(key, freeze(value, key, previous=previous), life)
        if change is not None:
            self._changed((change,))

    def __delitem__(self, key: str) -> None:
        key = check_key(key)
        self._changed((self._store.delete(key),))

    @overload
    def update(self, key: str, fn: Callable[[Any], Any], default: Any = ...) -> Any: ...
    @overload  # positional-only spelt with "__": mypy refuses "/" before **kwargs against *args here
    def update(
        self, __values: Mapping[str, Any] | Iterable[tuple[str, Any]] = ..., **kwargs: Any
    ) -> None: ...
    def update(self, *args: Any, **kwargs: Any) -> Any:
        """Two forms, told apart by the arguments:

        - ``update(key, fn, default=...)``: a str key and a callable. Atomically
          replace ``key``'s value with ``fn(value)`` and return it.
        - ``update(mapping_or_pairs, **values)``: dict's ``update``. Set every
          pair as ONE atomic commit (later pairs win, keywords last); equal
          values are no change. Returns None.

        Keywords alone are dict's form, except ``key=`` and ``fn=`` together
        (and nothing but ``default=`` besides), the first form spelt out; set
        keys named ``key`` and ``fn`` with a mapping."""
        if not kwargs and 2 <= len(args) <= 3 and type(args[0]) is str:
            return self._update_one(*args)  # the hot path: update("count", fn)
        if args:
            # A str key, or a callable second: the first form (a key that is
            # not a str is then refused by name).
            one_key = isinstance(args[0], str) or (
                len(args) > 1 and callable(args[1]) and not hasattr(args[0], "keys")
            )
        else:
            one_key = {"key", "fn"} <= kwargs.keys() <= {"key", "fn", "default", "idle", "at"}
        if one_key:
            given = dict(zip(("key", "fn", "default"), args, strict=False))
            if len(args) > 3 or any(
                name in given or name not in ("key", "fn", "default", "idle", "at") for name in kwargs
            ):
                raise ServerStateTypeError(
                    None, f"server_state.update(key, fn, ...) got unexpected arguments; {_UPDATE_FORMS}"
                )
            return self._update_one(**given, **kwargs)
        if len(args) > 1:
            raise ServerStateTypeError(
                None,
                f"server_state.update() got {len(args)} positional arguments; {_UPDATE_FORMS}",
            )
        pairs = _pairs(args[0]) if args else {}
        for name, value in kwargs.items():
            pairs[name] = value
        self._set_many(pairs)
        return None

    def _update_one(
        self, key: str, fn: Any = MISSING, default: Any = MISSING, idle: Any = None, at: Any = None
    ) -> Any:
        """Atomically replace ``key``'s value with ``fn(value)`` and return it.

        ``fn`` receives the stored form (a pyrsistent value when you stored
        one, so appending to a large ``pvector`` is O(log n)) and must be pure:
        when another writer got in first it is called again with the newer
        value. Holds ``server_state_lock[key]`` meanwhile, so it is atomic
        with code that uses that lock too. A missing key uses ``default``, or
        raises ``KeyError`` when none is given.
        """
        if type(key) is not str:
            key = check_key(key)
        if not callable(fn):
            got = "no fn" if fn is MISSING else f"fn of type {type(fn).__name__}"
            raise ServerStateTypeError(
                key,
                f"server_state.update({key!r}, ...) got {got}: a str key must be followed by a "
                f"callable; {_UPDATE_FORMS} To set {key!r} to a value, write server_state[{key!r}] = value.",
            )
        life = (
            None if idle is None and at is None else lifetime(f"server_state.update({key!r}, ...)", idle, at)
        )
        if self._typed and (spec := self._typed.get(key)) is not None:
            fn = check_update(spec, fn)  # fn's result checked inside the store's retry, before the commit
        if key[:1] == HIDDEN and self._store.entry(key)[0] is MISSING:
            _refuse_hidden(key)
        lock = self._locks.local(key)
        if not lock.acquire(True, _locks.LOCK_PATIENCE):
            self._locks.waited(key, lock)  # raises on a deadlock, else waits on
        try:
            new, _, change = self._store.update(key, fn, default, life)
        finally:
            lock.release()
        if change is not None:
            if self._read_cache:
                self._read_cache.pop(key, None)
            self._coord.announce((change,))
        return new

    def _set_many(self, pairs: dict[str, Any]) -> None:
        """Every pair in one commit, through ``transact``: frozen, compared
        (equal values are no change), checked against declared keys, and
        retried on a conflict like any transaction."""
        if not pairs:
            return
        for key, value in pairs.items():
            refuse_missing(key, value)

        def put(state: PMap[str, Any]) -> PMap[str, Any]:
            out: PMap[str, Any] = state.update(pairs)
            return out

        self.transact(put)

    def pop(self, key: str, default: Any = MISSING) -> Any:
        """Remove ``key`` and return its value, in one commit; a missing key
        returns ``default``, or raises ``KeyError`` when none is given."""
        key = check_key(key)
        found, value = self._pop(key, default is MISSING)
        if found:
            return self._detached(key, value)
        if default is MISSING:
            raise ServerStateKeyError(
                key,
                f"server_state has no key {key!r} to pop; pass a default "
                f"(server_state.pop({key!r}, None)) or check `{key!r} in server_state` first.",
            )
        return default

    def popitem(self) -> tuple[str, Any]:
        """Remove the key set last (as ``dict.popitem``: last in, first out)
        and return ``(key, value)``, in one commit. ``KeyError`` when empty."""
        while True:
            keys = self._store.keys()
            if not keys:
                raise ServerStateKeyError(
                    None, "server_state.popitem(): server_state is empty; check len(server_state) first."
                )
            key = keys[-1]
            found, value = self._pop(key, False)
            if found:
                return key, self._detached(key, value)
            # Deleted by another writer meanwhile: take the key now last.

    def _pop(self, key: str, confirm: bool) -> tuple[bool, Any]:
        """``(True, stored value)`` after one commit deleting ``key``, or
        ``(False, MISSING)`` when it is absent; with ``confirm``, absent in
        the source of truth, not only in a mirror that may lag."""
        taken: list[Any] = []

        def take(state: PMap[str, Any]) -> PMap[str, Any]:
            taken.clear()
            if key not in state:
                return state
            taken.append(state[key])
            return state.remove(key)

        while True:
            version = self._store.version(key)
            self.transact(take)
            if taken:
                return True, taken[0]
            if not confirm or self._store.confirm(key, version):
                return False, MISSING

    def _detached(self, key: str, value: Any) -> Any:
        """The read form of a value no longer in the state, not cached (the
        cache is for live values: a popped one would stay held by it)."""
        if type(value) in _FAST_READ or not is_persistent(value):
            return value
        return read_form(value, key)

    def clear(self) -> None:
        """Delete every key, in one commit: each bound session reruns once."""

        def empty(state: PMap[str, Any]) -> PMap[str, Any]:
            # Not the map given: the store then deletes every key it held (and
            # the keys' deadlines) but the library's own (presence rooms).
            return pmap({k: v for k, v in state.items() if k[:1] == HIDDEN and not k.startswith(DEADLINE)})

        if len(self._store):
            self.transact(empty)

    def transact(self, fn: Callable[[PMap[str, Any]], PMap[str, Any]]) -> PMap[str, Any]:
        """Atomically apply ``fn`` to the state, a pyrsistent map of stored
        forms, e.g. ``lambda s: s.set("a", s["a"] - 1).set("b", s["b"] + 1)``.

        The map records the keys ``fn`` reads and writes: the transaction is
        retried only if one of those changed while ``fn`` ran, and costs
        O(keys touched). After a few retries it runs alone (other commits
        wait), so it always finishes. ``fn`` must be pure. Only keys whose
        value changed advance. Returns the map ``fn`` returned, its values in
        stored form."""
        if not callable(fn):
            raise ServerStateTypeError(
                None, f"server_state.transact(fn): fn must be callable, got {type(fn).__name__}."
            )
        if self._typed:
            fn = check_transact(self._typed, fn)  # declared keys the map writes, checked before the commit
        result, changes = self._store.transact(fn, guard=self._locks.holding)
        if changes:
            self._changed(changes)
        return result

    def setdefault(self, key: str, default: Any = None, *, idle: Any = None, at: Any = None) -> Any:
        """Set ``key`` to ``default`` unless it is set, atomically; return its
        value. ``idle=``/``at=``: the lifetime the key gets when this sets it
        (see ``set``)."""
        key = check_key(key)
        refuse_missing(key, default)
        life = (
            None
            if idle is None and at is None
            else lifetime(f"server_state.setdefault({key!r}, ...)", idle, at)
        )
        if self._typed and (spec := self._typed.get(key)) is not None:
            spec.check(default)  # even when the key is set: a default it could never store is a bug
        if key[:1] == HIDDEN and self._store.entry(key)[0] is MISSING:
            _refuse_hidden(key)
        lock = self._locks.acquire(key)
        try:
            value, version, change = self._store.update(key, _same, default, life)
        finally:
            lock.release()
        if change is not None:
            self._changed((change,))
        self._bind(key, version)
        return self._readable(key, value)

    @overload
    def key(
        self,
        name: str,
        tp: type[_T],
        *,
        default: _T = ...,
        validator: Callable[[_T], object] | None = None,
        idle: Any = None,
        at: Any = None,
    ) -> Key[_T]: ...
    @overload
    def key(
        self,
        name: str,
        tp: tuple[type[_T], type[_T2]],
        *,
        default: _T | _T2 = ...,
        validator: Callable[[_T | _T2], object] | None = None,
        idle: Any = None,
        at: Any = None,
    ) -> Key[_T | _T2]: ...
    @overload
    def key(
        self,
        name: str,
        tp: tuple[type[_T], type[_T2], type[_T3]],
        *,
        default: _T | _T2 | _T3 = ...,
        validator: Callable[[_T | _T2 | _T3], object] | None = None,
        idle: Any = None,
        at: Any = None,
    ) -> Key[_T | _T2 | _T3]: ...
    @overload
    def key(
        self,
        name: str,
        tp: types.UnionType | tuple[type[Any], ...],
        *,
        default: Any = ...,
        validator: Callable[[Any], object] | None = None,
        idle: Any = None,
        at: Any = None,
    ) -> Key[Any]: ...
    def key(
        self,
        name: str,
        tp: object,
        *,
        default: Any = MISSING,
        validator: Callable[[Any], object] | None = None,
        idle: Any = None,
        at: Any = None,
    ) -> Key[Any]:
        """Declare ``name``'s type (a class, a tuple of classes, ``X | None``,
        ``list[int]`` whose origin is checked) and an optional ``validator``
        (``new_value -> bool``: a false result or an exception rejects), and
        return a typed handle ``Key[T]`` with ``get()``, ``set()``,
        ``update()``, ``peek()``, ``version``. From then on every write of
        ``name``, through the handle or not, is checked before it commits; a
        refused one raises ``ServerStateTypeError`` or
        ``ServerStateValidationError`` and writes nothing. ``default`` is what
        ``get()`` returns while the key is absent (it is not stored). The
        same declaration again (a script rerun) returns the same handle; a
        different one raises ``ServerStateError``. For a union, annotate:
        ``user: Key[str | None] = server_state.key("user", str | None, default=None)``.
        ``idle=``/``at=``: every write of the key made here gives it that
        lifetime (see ``set``)."""
        name = check_key(name)
        life = lifetime(f"server_state.key({name!r}, ...)", idle, at)
        handle = register(self, self._typed, name, tp, default, validator)
        self._store.declare_lifetime(name, None, life)
        return handle

    # -- lifetimes ----------------------------------------------------------------

    def expire(self, key: str, *, idle: Any = None, at: Any = None) -> None:
        """Give the set key ``key`` a lifetime from now (``idle=`` seconds
        without a change, or until ``at=``), replacing the one it had; with
        neither, take its lifetime away (it stays until deleted). Calling it
        again with ``idle=`` restarts the idle time: reading a key never does.
        One commit of the deadline alone: the key's value and version stay."""
        key = check_key(key)
        life = lifetime(f"server_state.expire({key!r}, ...)", idle, at)
        changes = self._store.set_lifetime(key, life)
        if changes:
            self._changed(changes)

    def expire_keys(self, prefix: str, *, idle: Any = None, at: Any = None) -> None:
        """Declare the lifetime of a family of keys: from now on, every key
        starting with ``prefix`` that this process writes gets it (``idle=``
        seconds without a change, or until ``at=``); with neither, the
        declaration is withdrawn. A declaration, as ``server_state.key(...)``:
        put it at the top of the script, where every process runs it; keys
        set before keep the lifetime they had."""
        if not isinstance(prefix, str) or not prefix:
            raise ServerStateTypeError(
                None,
                f"server_state.expire_keys(prefix, ...): prefix must be a non-empty str, got {prefix!r}.",
            )
        prefix = check_key(prefix)
        life = lifetime(f"server_state.expire_keys({prefix!r}, ...)", idle, at)
        self._store.declare_lifetime(None, prefix, life)

    def deadline(self, key: str) -> datetime.datetime | None:
        """When ``key`` expires (a UTC datetime), as things stand: None when it
        has no lifetime. Binds nothing."""
        stored = self._store.deadline(check_key(key))
        return None if stored is None else datetime.datetime.fromtimestamp(stored[0], datetime.UTC)

    def watch(
        self,
        keys: str | Iterable[str] | None,
        callback: Callable[..., None],
        *,
        with_version: bool = False,
        with_cause: bool = False,
    ) -> Callable[[], None]:
        """Call ``callback(key, old, new)`` after every commit that changes one
        of ``keys`` (all keys when None), in the writer's thread, with no lock
        held; ``old``/``new`` are stored forms, ``MISSING`` when absent.

        Writers in different threads may call it in another order than their
        commits: with ``with_version=True`` it is called as
        ``callback(key, old, new, version)`` and a call whose version is not
        newer than the last one seen is an older change. With
        ``with_cause=True`` a last argument says why: ``"expired"`` for the
        end of a key's lifetime, ``"write"`` for anything else. Returns a
        function that unsubscribes."""
        if not callable(callback):
            raise ServerStateTypeError(None, "server_state.watch(keys, callback): callback must be callable.")
        if isinstance(keys, str):
            keys = (keys,)
        elif keys is not None:
            if not isinstance(keys, Iterable):
                raise ServerStateTypeError(
                    None,
                    f"server_state.watch(keys, callback): keys must be a key, a list of keys or None "
                    f"(every key), got {keys!r} ({type(keys).__name__}).",
                )
            keys = tuple(check_key(k) for k in keys)
        return self._store.watch(keys, callback, with_version=with_version, with_cause=with_cause)

    def force_rerun(self, key: str) -> None:
        key = check_key(key)
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
        return self._tracker.bound_sessions(check_key(key))

    def rates(self, seconds: int = 60) -> list[tuple[int, int, int]]:
        """Commits and pushed reruns per second over the last ``seconds``
        (at most 120): ``(unix second, commits, reruns)``, oldest first, the
        last one still counting. Counting starts at the first call (an app
        that never asks pays nothing), so the first answer is all zeros."""
        if type(seconds) is not int or seconds < 1:
            raise ServerStateTypeError(
                None, f"server_state.rates(seconds) takes an int >= 1, got {seconds!r}."
            )
        return self._coord.count_rates().last(seconds)

    def loop_warnings(self) -> list[tuple[float, tuple[str, ...], str]]:
        """The rerun loops stopped lately (the last 50), oldest first:
        ``(time.time(), keys, message)``."""
        return list(self._tracker.loop_reports)

    # -- the inspector -------------------------------------------------------------

    def inspector(
        self,
        *,
        private: Iterable[str] | Callable[[str], bool] = (),
        allow_revert: Callable[[], bool] | None = None,
        history: int = 20,
    ) -> None:
        """Show the state on this Streamlit page, live: its keys, writes and
        pushed reruns per second, the last ``history`` commits with their
        diffs, rerun-loop warnings, each key's expiry deadline, and who is
        in each room (``presence``). Read-only unless ``allow_revert`` is
        given: each commit then gets a revert button, shown and carried out
        only while ``allow_revert()`` returns True. Keys in ``private`` (or
        for which it returns True) show their type, size and version, never
        their value. Only its fragment reruns, after any commit."""
        from ._inspector import render

        render(
            self,
            private=private,
            allow_revert=allow_revert,
            history=history,
            deadlines=self._store.deadlines,
            rooms=self._presence.rooms,
            heartbeats=self._presence.heartbeats,
        )

    # -- who is here -----------------------------------------------------------------

    def presence(self, room: str, name: str | None = None, *, join: bool = True) -> list[Member]:
        """Say that the running session is in ``room`` and return who is
        here: a ``Member(name, since, me)`` per session in the room, first
        come first. Binds like any read: the session reruns when someone
        joins or leaves. The display name is the logged-in user's
        (``st.login``), else ``name``, else a guest name that stays the same
        for the session. Calling it on every run commits nothing unless the
        name changed. The session leaves when its tab closes (within a few
        seconds), when its replica dies (within its lease time), or with
        ``leave(room)``. ``join=False``: read who is here without joining."""
        if join:
            return self._presence.join(room, name)
        return self._presence.members(room)

    def leave(self, room: str) -> bool:
        """The running session leaves ``room`` (one commit; the sessions that
        show the room rerun). False when it was not in it."""
        return self._presence.leave(room)

    # -- history -------------------------------------------------------------------

    def history(self, key: str | None = None, limit: int | None = None) -> list[Commit]:
        """The last commits (that changed ``key``), newest first, at most
        ``limit``: each with its ``seq``, ``time``, ``keys``, ``origin`` (who
        made it) and the values ``before(key)`` / ``after(key)``. Kept: the
        last ``configure(history=...)`` commits within ``history_age``
        seconds. Reading it binds nothing (no rerun when it grows)."""
        if key is not None:
            key = check_key(key)
        if limit is not None and (type(limit) is not int or limit < 0):
            raise ServerStateTypeError(
                key, f"server_state.history(limit=...) must be an int >= 0, got {limit!r}."
            )
        # (Commits of the library's own keys alone are kept aside by the history: never listed.)
        return [Commit(self, record) for record in self._store.records(key, limit)]

    def at(self, seq: int) -> Snapshot:
        """The state right after commit ``seq``, as a read-only snapshot that
        binds nothing (it is the past: it never goes stale). ``LookupError``
        when the history no longer reaches back that far."""
        return Snapshot(self, self._store.at(seq), None, bind=False)

    def revert(self, seq: int, keys: Iterable[str] | None = None) -> list[str]:
        """Write back the values ``keys`` had right after commit ``seq`` (all
        keys changed since, when None; a key absent then is deleted) as ONE
        new commit: versions only move forward and the sessions that show
        those keys rerun once, as for any write. Returns the keys it changed
        (empty when they already had those values)."""
        target = self._store.at(seq).values
        names = (
            list(dict.fromkeys(check_key(k) for k in keys))
            if keys is not None
            else self._store.changed_since(seq)
        )
        if keys is not None:  # a key comes back with the lifetime it had
            names += [DEADLINE + k for k in names if k[:1] != HIDDEN]
        else:  # the app's keys and their deadlines; not who is here, nor replicas' heartbeats
            names = [k for k in names if k[:1] != HIDDEN or k.startswith(DEADLINE)]
        changed: list[str] = []

        now = time.time()

        def back(state: PMap[str, Any]) -> PMap[str, Any]:
            changed.clear()
            for name in names:
                want = target.get(name, MISSING)
                if want is not MISSING and name.startswith(DEADLINE):
                    # A deadline comes back from now: an idle lifetime starts
                    # again, a time already past is dropped (or the key would
                    # expire again at once).
                    stored = parse_stored(want)
                    if stored is not None and stored[0] <= now:
                        want = MISSING if stored[1] is None else (now + stored[1], stored[1])
                have = state.get(name, MISSING)
                if want is have:
                    continue
                if name[:1] != HIDDEN:
                    changed.append(name)
                state = state.remove(name) if want is MISSING else state.set(name, want)
            return state

        self.transact(back)
        return list(changed)

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
                name,
                f"server_state.{name} is a method; use del server_state[{name!r}] for a key of that name.",
            )
        try:
            del self[name]
        except ServerStateKeyError as exc:
            raise _AttributeKeyError(name, str(exc)) from None

    # -- shared widgets (server_state._widgets) -------------------------------------

    def widget(
        self,
        widget: Callable[..., _T],
        label: str | None = None,
        /,
        *,
        key: str | Key[Any],
        default: Any = MISSING,
        widget_key: str | None = None,
        on_change: Callable[..., None] | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **widget_kwargs: Any,
    ) -> _T:
        """Draw ``widget`` (``st.text_input``, ``st.slider``, ... or
        ``st.data_editor``) showing the shared value of ``key`` (a name or a
        typed ``Key``; ``default`` while it is not set) and publishing the
        user's edit; return the widget's value. Other keyword arguments go to
        the widget; its own key is ``widget_key`` (``"server_state:<key>"`` by
        default); ``on_change(*args, **kwargs)`` is called after an edit is
        published. A write the typed key refuses writes nothing: the widget
        shows the shared value again, under a warning saying why."""
        from ._widgets import bind

        return bind(
            self,
            widget,
            label,
            key=key,
            default=default,
            widget_key=widget_key,
            on_change=on_change,
            args=args,
            kwargs=kwargs,
            widget_kwargs=widget_kwargs,
        )


def _refuse_hidden(key: str) -> None:
    raise ServerStateKeyError(
        key,
        f"server_state keys starting with {HIDDEN!r} (NUL) are the library's own (deadlines, presence); "
        f"name the key {key.lstrip(HIDDEN)!r} or anything else.",
    )


def _same(value: Any) -> Any:
    return value


_UPDATE_FORMS = (
    "server_state.update() takes one of two forms: update(key, fn, default=...) "
    "(a str key and a callable: atomic read-modify-write of one key) or "
    "update(mapping_or_pairs, **values) (dict's update: every pair in one commit)."
)


def _pairs(values: object) -> dict[str, Any]:
    """dict's reading of ``update``'s argument: a mapping (anything with
    ``keys()``) or an iterable of pairs; later pairs win. Read whole before
    anything is written, so a bad element leaves the state unchanged."""
    if hasattr(values, "keys"):
        source: Any = values
        return {check_key(key): source[key] for key in source.keys()}  # noqa: SIM118  (dict's protocol)
    if not isinstance(values, Iterable):
        raise ServerStateTypeError(
            None,
            f"server_state.update() got {type(values).__name__}, which is neither a mapping nor pairs; "
            f"{_UPDATE_FORMS}",
        )
    pairs: dict[str, Any] = {}
    for index, pair in enumerate(values):
        try:
            key, value = pair
        except (TypeError, ValueError):
            raise ServerStateTypeError(
                None,
                f"server_state.update(pairs): element #{index} ({pair!r}) is not a (key, value) pair; "
                "nothing was written.",
            ) from None
        pairs[check_key(key)] = value
    return pairs


MutableMapping.register(ServerState)


class _AttributeKeyError(ServerStateKeyError, AttributeError):
    """``server_state.missing``: a KeyError (as upstream) and an AttributeError
    (so ``hasattr`` and ``getattr(..., default)`` work)."""


class Snapshot(Mapping[str, Any]):
    """The state at one instant. Reads bind the session at that instant, so
    it reruns if a key it showed from the snapshot has advanced since.

    Iterates in the order of ``keys()`` (first set first), or, when taken of
    named keys, in the order they were named; costs O(keys asked for)."""

    __slots__ = ("_binds", "_keys", "_owner", "_state")

    def __init__(
        self, owner: ServerState, state: StoreState, keys: tuple[str, ...] | None, *, bind: bool = True
    ) -> None:
        self._owner = owner
        self._state = state
        self._keys = keys
        self._binds = bind

    @property
    def seq(self) -> int:
        """The commit this snapshot shows."""
        return self._state.seq

    def stored(self, key: str) -> Any:
        """``key``'s value as the store keeps it (persistent or frozen), no
        read form built and nothing bound: for tools that show types and
        sizes of a large state. ``KeyError`` when absent."""
        key = check_key(key)
        self._allowed(key)
        value = self._state.values.get(key, MISSING)
        if value is MISSING:
            raise ServerStateKeyError(key, f"the snapshot at commit {self.seq} has no key {key!r}.")
        return value

    def _allowed(self, key: str) -> None:
        if self._keys is not None and key not in self._keys:
            raise ServerStateKeyError(
                key, f"this snapshot was taken of {list(self._keys)!r} only; {key!r} is not in it."
            )

    def __getitem__(self, key: str) -> Any:
        if type(key) is not str:
            key = check_key(key)
        self._allowed(key)
        value = self._state.values.get(key, MISSING)
        if self._binds:
            self._owner._bind(key, self._state.seq)
        if value is MISSING:
            raise ServerStateKeyError(key, f"the snapshot has no key {key!r}.")
        return self._owner._readable(key, value)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        key = check_key(key)
        if self._keys is not None and key not in self._keys:
            return False
        if self._binds:
            self._owner._bind(key, self._state.seq)
        return key in self._state.values

    def _present(self) -> list[str]:
        if self._keys is not None:
            values = self._state.values
            return [k for k in self._keys if k in values]
        return self._owner._store.ordered_keys(self._state)

    def __iter__(self) -> Iterator[str]:
        return iter(self._present())

    def __len__(self) -> int:
        if self._keys is None and not self._owner._store.mirror.hidden:
            return len(self._state.values)
        return len(self._present())

    def __copy__(self) -> Snapshot:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        """A deep, mutable plain copy of what the snapshot shows."""
        return {k: copy.deepcopy(self[k], memo) for k in self}

    def __repr__(self) -> str:
        return f"<server_state snapshot at commit {self._state.seq}: {len(self)} keys>"


class Commit:
    """One commit of the history: ``seq`` (the version it gave its keys),
    ``time`` (a UTC datetime), ``keys`` it changed, ``origin`` (who made it:
    ``"session <id>"``, ``"thread <name>"``, with Redis prefixed by the
    replica's name) and each key's value ``before`` and ``after`` it."""

    __slots__ = ("_owner", "_record", "origin", "seq")

    def __init__(self, owner: ServerState, record: Record) -> None:
        self._owner = owner
        self._record = record  # time, keys and values read from it when asked: history() stays cheap
        self.seq = record.seq
        self.origin = record.origin

    @property
    def time(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._record.time, datetime.UTC)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(change.key for change in self._record.changes if change.key[:1] != HIDDEN)

    @property
    def expired(self) -> bool:
        """Whether this commit is an expiry (keys whose lifetime ended)."""
        return self.origin.rsplit(" · ", 1)[-1].startswith("expired (")

    def change(self, key: str) -> Change:
        """``key``'s change in this commit as stored: ``(key, old, new,
        version)`` with ``old``/``new`` in stored form (persistent or frozen,
        or ``MISSING``), no read form built: for tools that diff commits."""
        key = check_key(key)
        for change in self._record.changes:
            if change.key == key:
                return change
        raise ServerStateKeyError(
            key, f"commit {self.seq} did not change {key!r}; it changed {list(self.keys)!r}."
        )

    def before(self, key: str, default: Any = None) -> Any:
        """``key``'s value right before this commit (``default`` if absent)."""
        old = self.change(key).old
        return default if old is MISSING else self._owner._readable(key, old)

    def after(self, key: str, default: Any = None) -> Any:
        """``key``'s value right after this commit (``default`` if deleted)."""
        new = self.change(key).new
        return default if new is MISSING else self._owner._readable(key, new)

    def deleted(self, key: str) -> bool:
        return self.change(key).new is MISSING

    def created(self, key: str) -> bool:
        return self.change(key).old is MISSING

    def __repr__(self) -> str:
        return (
            f"<server_state commit {self.seq} at {self.time:%H:%M:%S} by {self.origin}: {list(self.keys)!r}>"
        )
