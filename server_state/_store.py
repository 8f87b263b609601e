"""The store engine: one for every backend.

A ``Store`` holds what every backend shares, once: the retry loops of
``set``/``touch``/``delete``/``update``/``transact``, freezing and change
detection, the run-alone mode a transaction falls back to, watchers, and
history. Its state is a ``Mirror`` (``server_state._mirror``): a persistent map
swapped atomically, read without a lock. A backend is a committer
(``server_state.backends._seam.Committer``): it decides whether a commit
lands and brings commits made elsewhere into the mirror; the engine talks to
it through that protocol only.

Write methods return the ``Change``s they made and call nobody: the caller
notifies watchers once it holds no lock (``notify``).

No Streamlit import here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from pyrsistent import PMap, pmap

from ._base import LOCAL, MISSING, Change, Origin, StoreState
from ._errors import ServerStateError, ServerStateKeyError, ServerStateTypeError
from ._expiry import DEADLINE, Clock, Lifetime, Lifetimes, parse_stored
from ._history import Record
from ._keys import HIDDEN
from ._mirror import Mirror
from ._txmap import TxMap, TxRecord, normalise_key
from ._values import SCALAR_TYPES, TOKENLESS_TYPES, content_token, freeze, tokens_of, unchanged
from .backends import Committer, MemoryCommitter, committer_from_url

__all__ = ["MISSING", "Change", "MemoryStore", "Store", "StoreState", "Watcher", "store_from_url"]

_LOG = logging.getLogger("server_state")

Watcher = Callable[..., None]

# Failed optimistic attempts of a transaction before it runs exclusively.
TRANSACT_ATTEMPTS = 3

_ABSENT: Any = object()  # not in a map (MISSING is a value a user could put there)


class _Busy:
    __slots__ = ()


BUSY = _Busy()

# ``guard(keys, wait)``: a context manager holding the keys' locks; it yields
# False, holding nothing, when ``wait`` is false and one of them is busy.
Guard = Callable[[list[str], bool], AbstractContextManager[bool]]


@contextmanager
def _no_guard(keys: list[str], wait: bool) -> Iterator[bool]:
    yield True


def refuse_missing(key: str, value: Any) -> None:
    if value is MISSING:
        raise ServerStateTypeError(
            key,
            f"server_state[{key!r}] cannot be set to MISSING: MISSING means 'no value'; "
            f"delete the key instead (del server_state[{key!r}]).",
        )


class Store:
    """The state, over one committer (``MemoryStore()``: in this process)."""

    def __init__(self, committer: Committer) -> None:
        self.committer = committer
        self.mirror = mirror = Mirror()
        self.history = mirror.history
        self._writer: Callable[[], str] = _thread_writer  # who commits, for the history
        # A shared backend sends the writer with every commit (the other
        # replicas' histories); in one process it is asked only while a
        # history is kept (``_who``).
        self._always_who = committer.shared
        self._on_remote: Callable[[tuple[Change, ...], Origin], None] | None = None
        self._origin: Callable[[], Origin] = _local
        self._watchers: dict[str | None, list[_Subscription]] = {}
        self._watchers_lock = threading.Lock()
        self._opened = False
        self.closed = False  # close() was called: the store's threads stop
        # Reads open the committer on first use, then go straight to the mirror.
        self.entry: Callable[[str], tuple[Any, int]] = self._entry_first
        self._expiring = threading.local()  # set in the clock's thread while it commits an expiry
        committer.bind(mirror, self._announce, self._origin_now)
        self._commit_one = committer.commit_one
        # Keys that expire (``_expiry``): what this process declared, and the
        # clock of the deadlines it knows of. ``_declared`` is the hot paths'
        # one test, with ``mirror.hidden`` (a companion exists).
        self.lifetimes = Lifetimes()
        self._declared = False
        self.clock = Clock(self._expire_due)
        # When this process saw each key that has a deadline last change (a
        # write here, or a commit of another process arriving): an idle
        # deadline is written with the key's lifetime, not on every change;
        # the clock works out the real one from this when it fires.
        self._changed_at: dict[str, float] = {}
        self._lived: set[str] = set()  # the keys that have a deadline (in the mirror)
        self._opened_at = 0.0

    # -- the backend ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.committer.url

    @property
    def shared(self) -> bool:
        return self.committer.shared

    @property
    def lock_factory(self) -> Callable[[str, threading.RLock], Any] | None:
        """The lock the facade gives each key (``server_state_lock[k]``):
        None for a plain re-entrant lock; a backend shared by replicas gives
        one that also holds a lease there."""
        return self.committer.lock_factory

    def attach(
        self,
        on_remote: Callable[..., None],
        origin: Callable[[], Any],
        writer: Callable[[], str] | None = None,
    ) -> None:
        """The facade's hooks: ``on_remote(changes, origin)`` announces
        commits made elsewhere; ``origin()`` is what a commit made here
        carries to the other replicas; ``writer()`` names who commits, for
        the history."""
        self._on_remote, self._origin = on_remote, origin
        if writer is not None:
            self._writer = writer

    def _origin_now(self) -> Origin:
        """What a commit made now carries to the other replicas."""
        origin = self._origin()
        if getattr(self._expiring, "on", False):
            return origin._replace(expired=True)
        return origin

    def _who(self) -> str:
        """Who commits, when anybody will read it (see ``_always_who``)."""
        return self._writer() if self._always_who or self.history.limit else ""

    def _announce(self, changes: tuple[Change, ...], origin: Origin) -> None:
        if self._lived:
            self._note_changes(changes)
        if self.mirror.hidden:
            for change in changes:
                if change.key[:1] == HIDDEN:
                    self._saw_companions(changes)
                    break
        if self._on_remote is not None:
            self._on_remote(changes, origin)

    @property
    def used(self) -> bool:
        """Whether the state was used (``configure`` refuses then)."""
        return self.committer.used

    def position(self) -> int:
        """The last commit this process took in, numbered as its backend
        numbers them (the memory store: its own sequence; Redis: the stream's
        sequence). A test or a tool waits for a replica to reach a position."""
        return self.committer.position()

    def confirm(self, key: str, version: int) -> bool:
        """Whether ``key`` is still at ``version`` where the state lives (a
        replica's mirror may lag behind Redis)."""
        self._open()
        return self.committer.confirm(key, version)

    def close(self) -> None:
        """Stop what the backend runs (nothing, in memory)."""
        self.closed = True
        self.clock.close()
        self.committer.close()

    def __repr__(self) -> str:
        return f"<Store over {self.committer!r}>"

    def _open(self) -> None:
        if not self._opened:
            self.committer.open()
            self.entry = self.mirror.entry
            self._opened = True
            self._opened_at = time.time()
            if self.mirror.hidden:  # deadlines kept by the backend: the clock takes them up
                for key, (value, _) in list(self.mirror.latest.items()):
                    if key.startswith(DEADLINE):
                        self._schedule(key[len(DEADLINE) :], value)

    def _entry_first(self, key: str) -> tuple[Any, int]:
        self._open()
        return self.mirror.entry(key)

    # -- reads: lock-free -------------------------------------------------------

    @property
    def state(self) -> StoreState:
        """The state at the newest commit, as one immutable value."""
        folded = self.mirror.folded  # (the mirror's state, its lock-free first step inline)
        if folded is not None and self._opened:
            return folded
        self._open()
        return self.mirror.state

    def __len__(self) -> int:
        """How many keys are set (the library's own not counted)."""
        self._open()
        return len(self.mirror.latest) - self.mirror.hidden

    def version(self, key: str) -> int:
        return self.entry(key)[1]

    def keys(self) -> list[str]:
        """Present keys in first-set order (the library's own not listed)."""
        self._open()
        keys = list(self.mirror.latest)
        if self.mirror.hidden:
            return [k for k in keys if k[:1] != HIDDEN]
        return keys

    def ordered_keys(self, state: StoreState) -> list[str]:
        """The keys of ``state`` in the order ``keys()`` gives (first set
        first); keys deleted since ``state`` come last."""
        self._open()
        return self.mirror.ordered_keys(state)

    # -- writes ---------------------------------------------------------------

    def set(self, key: str, value: Any, life: Lifetime | None = None) -> Change | None:
        """Store ``value`` (already frozen), with ``life`` when given (else
        the lifetime declared for the key, or the idle lifetime it has).
        Returns the change, or None when nothing changed."""
        if value is MISSING:
            refuse_missing(key, value)
        token = None if type(value) in TOKENLESS_TYPES else content_token(value)
        mirror = self.mirror
        while True:
            entry = mirror.latest.get(key)  # (mirror.entry's hot path, inline)
            if entry is None:
                old, version = self.entry(key)
                if old is not MISSING:
                    continue  # the backend opened just now: the key is in the mirror
            else:
                old, version = entry
                # The same object again is unchanged, unless it is one whose
                # content we fingerprint and it was changed in place.
                same = (
                    token is None or token == mirror.tokens.get(key)
                    if old is value
                    else unchanged(old, value)
                )
                if same:
                    if self.committer.confirm(key, version):
                        return None
                    continue
            who = self._writer() if self._always_who or self.history.limit else ""
            if life is not None or self._declared:
                changes = self._with_lifetime(key, version, value, token, who, life, False)
                if changes is None:
                    continue
                return changes[0]
            change = self._commit_one(key, version, value, token, who, False)
            if change is not None:
                if key in self._lived:
                    self._changed_at[key] = time.time()  # an idle deadline moves on from now
                return change

    def touch(self, key: str) -> Change:
        """Advance ``key``'s version keeping its newest value: an in-place
        change of an object stored by reference, announced by the caller."""
        while True:
            value, version = self.entry(key)
            if value is MISSING:
                if not self.committer.confirm(key, version):
                    continue
                raise ServerStateKeyError(key, f"server_state has no key {key!r}; set it first.")
            token = None if type(value) in TOKENLESS_TYPES else content_token(value)
            change = self._commit_one(key, version, value, token, self._who(), False)
            if change is not None:
                return change

    def delete(self, key: str) -> Change:
        while True:
            old, version = self.entry(key)
            if old is MISSING:
                if not self.committer.confirm(key, version):
                    continue  # a copy that lags: the key may exist by now
                raise ServerStateKeyError(
                    key,
                    f"server_state has no key {key!r} to delete; check with `{key!r} in server_state` first.",
                )
            companion = DEADLINE + key
            if self.mirror.hidden and companion in self.mirror.latest:  # its deadline goes with it
                changes = self._commit(
                    {key: version, companion: self.mirror.latest[companion][1]}, {}, (key, companion)
                )
                if changes is not None:
                    self._lived.discard(key)
                    self._changed_at.pop(key, None)
                    self.clock.forget(key)
                    return changes[0]
                continue
            changes = self._commit({key: version}, {}, (key,))
            if changes is not None:
                return changes[0]

    def update(
        self, key: str, fn: Callable[[Any], Any], default: Any = MISSING, life: Lifetime | None = None
    ) -> tuple[Any, int, Change | None]:
        """Compare-and-set: ``fn(current)`` is computed outside every internal
        lock and committed only if ``key`` did not change meanwhile, else
        retried. Returns the value now stored, its version, and the change."""
        mirror = self.mirror
        committer = self.committer
        while True:
            seen = mirror.seq
            entry = mirror.latest.get(key)  # (mirror.entry's hot path, inline)
            current, version = self.entry(key) if entry is None else entry
            exists = current is not MISSING
            if not exists:
                if default is MISSING:
                    if not committer.confirm(key, version):
                        continue
                    raise ServerStateKeyError(
                        key,
                        f"server_state has no key {key!r} to update; pass a default "
                        f"(server_state.update({key!r}, fn, default=0)) or assign it first.",
                    )
                current = freeze(default, key)
            try:
                new = fn(current)
            except ServerStateError:
                raise
            except Exception:
                # fn failing on a value another replica already replaced is
                # no error of the app's: on the newer value, again.
                if committer.lagged(seen):
                    continue
                raise
            if type(new) in SCALAR_TYPES:  # the counter's hot path: nothing to freeze or fingerprint
                token = None
            else:
                refuse_missing(key, new)
                new = freeze(new, key, previous=current)
                token = None if type(new) in TOKENLESS_TYPES else content_token(new)
            if exists and unchanged(current, new):
                if committer.confirm(key, version):
                    return current, version, None
                continue
            who = self._writer() if self._always_who or self.history.limit else ""
            if life is not None or self._declared:
                changes = self._with_lifetime(key, version, new, token, who, life, True)
                if changes is None:
                    continue
                return new, changes[0].version, changes[0]
            change = self._commit_one(key, version, new, token, who, True)
            if change is not None:
                if key in self._lived:
                    self._changed_at[key] = time.time()  # an idle deadline moves on from now
                return new, change.version, change

    def transact(
        self,
        fn: Callable[[PMap[str, Any]], PMap[str, Any]],
        guard: Guard = _no_guard,
    ) -> tuple[PMap[str, Any], tuple[Change, ...]]:
        """Multi-key compare-and-set. ``fn`` gets the state as a map that
        records which keys it reads and writes; the commit conflicts only when
        one of those changed meanwhile, and costs O(keys touched). After
        ``TRANSACT_ATTEMPTS`` conflicts the transaction runs exclusively
        (other commits here wait), so it always finishes. ``guard(keys,
        wait)`` is held around the commit (the facade's per-key locks, so a
        transaction never lands inside a locked read-modify-write). Returns
        the map committed: ``fn``'s result with its values in stored form."""
        keys: list[str] = []
        for _ in range(TRANSACT_ATTEMPTS):
            done, keys = self._transact_once(fn, guard, wait=True)
            if isinstance(done, tuple):
                return done
        # Alone from here. The key locks the last attempt needed are taken
        # first, before other commits are held up: a writer waiting for us to
        # finish may hold a key lock, and we must never wait for it. Another
        # key's lock that fn now needs is only tried; if busy, we stand down,
        # wait for it with the others, and go again.
        me = threading.get_ident()
        mirror = self.mirror
        while True:
            with guard(keys, True):
                with mirror.lock:
                    mirror.wait_turn()
                    outer, mirror.exclusive = mirror.exclusive, me
                try:
                    done, more = self._transact_once(fn, guard, wait=False)
                finally:
                    with mirror.lock:
                        mirror.exclusive = outer
                        mirror.exclusive_over.notify_all()
            if isinstance(done, tuple):
                return done
            if done is None and not self.committer.shared:
                raise ServerStateError(
                    f"server_state.transact(fn) conflicted with itself after {TRANSACT_ATTEMPTS + 1} "
                    "attempts, the last one alone: fn must not write to server_state (return the "
                    "changed map instead)."
                )
            keys = sorted({*keys, *more})

    def _transact_once(
        self,
        fn: Callable[[PMap[str, Any]], PMap[str, Any]],
        guard: Guard,
        *,
        wait: bool,
    ) -> tuple[tuple[PMap[str, Any], tuple[Change, ...]] | _Busy | None, list[str]]:
        """One attempt: ``(result, keys)``, or ``(None, keys)`` on a conflict,
        or ``(BUSY, keys)`` when ``wait`` is false and a key lock was busy;
        ``keys`` are the keys the commit needed to guard."""
        state = self.state
        base = state.values
        record = TxRecord()
        try:
            result = fn(TxMap.wrap(base, record))
        except ServerStateError:
            raise
        except Exception:
            if self.committer.lagged(state.seq):
                return None, []  # a conflict: go again on the newer state
            raise
        if not isinstance(result, PMap):
            raise ServerStateTypeError(
                None,
                "server_state.transact(fn): fn must return the map it was given, changed "
                f"with .set()/.remove() (a pyrsistent PMap); it returned {type(result).__name__}.",
            )
        committed = TxMap.unwrap(result)
        conflicts: AbstractSet[str] | None
        if isinstance(result, TxMap) and result.record is record and not record.read_all:
            # Keys were normalised by the TxMap as fn wrote them.
            touched = {key: PMap.get(committed, key, _ABSENT) for key in record.written}
            conflicts = record.read.union(record.written)
        else:
            # Built some other way (pmap(...), an evolver) or fn looked at the
            # whole map: compare everything, conflict with any commit. The keys
            # fn set come first, in its order (a PMap iterates in hash order):
            # the keys it creates are first set in that order.
            given = {_transact_key(key): value for key, value in committed.items()}
            if len(given) != len(committed):  # str-subclass keys: rebuild with plain ones
                committed = pmap(given)
            order = dict.fromkeys([*record.written, *given, *base])
            touched = {key: given.get(key, _ABSENT) for key in order}
            conflicts = None
        writes: dict[str, Any] = {}
        deletes: list[str] = []
        evolver = committed.evolver()
        for key, new in touched.items():
            old = base.get(key, MISSING)
            if new is _ABSENT:
                if old is not MISSING:
                    deletes.append(key)
                continue
            refuse_missing(key, new)
            if new is old:
                continue
            frozen = freeze(new, key, previous=old)
            if frozen is not new:
                evolver[key] = frozen
            if old is MISSING or not unchanged(old, frozen):
                writes[key] = frozen
        committed = evolver.persistent()
        keys = [*writes, *deletes]
        if not keys:
            return (committed, ()), keys
        if self._declared or self.mirror.hidden:
            conflicts = self._lifetimes_of(writes, deletes, base, conflicts)
        with guard(keys, wait) as held:
            if not held:
                return BUSY, keys
            changes = self._commit(
                None, writes, tuple(deletes), since=state.seq, conflicts=conflicts, respect=True
            )
        if changes is None:
            return None, keys
        if self._declared or self.mirror.hidden:
            self._saw_companions(changes)
            self._note_changes(changes)
        return (committed, changes), keys

    def _commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        since: int = 0,
        conflicts: AbstractSet[str] | None = None,
        respect: bool = False,
    ) -> tuple[Change, ...] | None:
        """The committer's ``commit``, with the writes' fingerprints and the
        writer. None tells the caller to retry."""
        self._open()
        return self.committer.commit(
            expected,
            writes,
            deletes,
            since=since,
            conflicts=conflicts,
            tokens=tokens_of(writes),
            who=self._who(),
            respect=respect,
        )

    # -- lifetimes ----------------------------------------------------------------

    def declare_lifetime(self, key: str | None, prefix: str | None, life: Lifetime | None) -> None:
        """This process's declaration of a key's (or a family's) lifetime:
        the writes made here from now on give it to the key."""
        if key is not None:
            self.lifetimes.declare(key, life)
        else:
            assert prefix is not None
            self.lifetimes.declare_prefix(prefix, life)
        self._declared = bool(self.lifetimes)

    def _wanted(self, key: str, life: Lifetime | None, had: tuple[Any, int] | None, now: float) -> Any:
        """The deadline a change of ``key`` must write with it (MISSING:
        none): its lifetime (``life``, else the one declared here) unless the
        key has that lifetime already. An idle deadline is not moved on by a
        change: the clock works it out when it fires (``_expire_due``)."""
        if life is None:
            if not self._declared:
                return MISSING
            life = self.lifetimes.of(key)
            if life is None:
                return MISSING
        if had is not None:
            stored = parse_stored(had[0])
            if stored is not None and (
                stored[1] == life.idle if life.idle is not None else stored == (life.at, None)
            ):
                return MISSING
        return life.stored(now)

    def _with_lifetime(
        self,
        key: str,
        version: int,
        value: Any,
        token: Any,
        who: str,
        life: Lifetime | None,
        respect: bool,
    ) -> tuple[Change, ...] | None:
        """A change of ``key`` that may have to do with a lifetime: with its
        deadline in one commit when the key gets a new lifetime, else the one-
        key commit, noting when a key with a deadline changed. The changes, or
        None (a conflict)."""
        companion = DEADLINE + key
        had = self.mirror.latest.get(companion) if self.mirror.hidden else None
        deadline = self._wanted(key, life, had, time.time())
        if deadline is MISSING:
            change = self._commit_one(key, version, value, token, who, respect)
            if change is None:
                return None
            if had is not None:
                self._changed_at[key] = time.time()
            return (change,)
        changes = self._commit(
            {key: version, companion: self.entry(companion)[1]},
            {key: value, companion: deadline},
            (),
            respect=respect,
        )
        if changes is not None:
            self._changed_at.pop(key, None)
            self._lived.add(key)
            self.clock.schedule(key, deadline[0])
        return changes

    def _lifetimes_of(
        self,
        writes: dict[str, Any],
        deletes: list[str],
        base: PMap[str, Any],
        conflicts: AbstractSet[str] | None,
    ) -> AbstractSet[str] | None:
        """A transaction's writes and deletes with their keys' deadlines
        (added in place); the keys it conflicts on, with those."""
        now = time.time()
        added: list[str] = []
        latest = self.mirror.latest
        for key in list(writes):
            if key[:1] == HIDDEN:
                continue
            deadline = self._wanted(key, None, latest.get(DEADLINE + key), now)
            if deadline is not MISSING:
                writes[DEADLINE + key] = deadline
                added.append(DEADLINE + key)
        for key in list(deletes):
            companion = DEADLINE + key
            if key[:1] != HIDDEN and companion in base and companion not in deletes:
                deletes.append(companion)
                added.append(companion)
        if conflicts is None or not added:
            return conflicts
        return {*conflicts, *added}

    def _note_changes(self, changes: Iterable[Change]) -> None:
        """Commits (here or arriving from elsewhere): when the keys that have
        a deadline changed; a deleted key's note goes."""
        now = time.time()
        for change in changes:
            key = change.key
            if change.new is MISSING:
                self._changed_at.pop(key, None)
            elif key in self._lived:
                self._changed_at[key] = now

    def set_lifetime(self, key: str, life: Lifetime | None) -> tuple[Change, ...]:
        """Give ``key`` (which must be set) ``life`` from now, or take its
        lifetime away (None): a commit of its deadline alone."""
        companion = DEADLINE + key
        while True:
            value, version = self.entry(key)
            if value is MISSING:
                if not self.committer.confirm(key, version):
                    continue
                raise ServerStateKeyError(
                    key, f"server_state has no key {key!r} to give a lifetime; set it first."
                )
            had, had_version = self.entry(companion)
            if life is None:
                if had is MISSING:
                    return ()
                changes = self._commit({key: version, companion: had_version}, {}, (companion,))
            else:
                deadline = life.stored(time.time())
                changes = self._commit({key: version, companion: had_version}, {companion: deadline}, ())
            if changes is not None:
                self._saw_companions(changes)
                return changes

    def deadline(self, key: str) -> tuple[float, float | None] | None:
        """``(deadline, idle)`` of ``key``'s lifetime (None: it has none)."""
        self._open()
        if not self.mirror.hidden:
            return None
        value, seen = self.entry(DEADLINE + key)
        stored = None if value is MISSING else parse_stored(value)
        if stored is None:
            return None
        return (self._due(key, stored, seen, self.entry(key)[1]), stored[1])

    def _due(self, key: str, stored: tuple[float, float | None], written: int, version: int) -> float:
        """When ``key`` expires: the deadline stored (at commit ``written``),
        or for an idle lifetime of a key changed since, ``idle`` seconds after
        its last change as this process saw it (after a start: the last
        change the history shows, else the start itself — later, never
        sooner)."""
        deadline, idle = stored
        if idle is None or version <= written:
            return deadline
        last = self._changed_at.get(key)
        if last is None:
            records = self.mirror.records(key, 1)
            last = records[0].time if records and records[0].seq == version else self._opened_at
        return max(deadline, last + idle)

    def deadlines(self) -> dict[str, tuple[float, float | None]]:
        """Every key's ``(deadline, idle)``, for the inspector."""
        self._open()
        out: dict[str, tuple[float, float | None]] = {}
        if self.mirror.hidden:
            for key in list(self.mirror.latest):
                if key.startswith(DEADLINE) and (stored := self.deadline(key[len(DEADLINE) :])) is not None:
                    out[key[len(DEADLINE) :]] = stored
        return out

    def _schedule(self, key: str, value: Any) -> None:
        stored = parse_stored(value)
        if stored is not None:
            self._lived.add(key)
            self.clock.schedule(key, stored[0])

    def _saw_companions(self, changes: Iterable[Change]) -> None:
        """Deadlines written or dropped by a commit: the clock follows."""
        for change in changes:
            if change.key.startswith(DEADLINE):
                key = change.key[len(DEADLINE) :]
                if change.new is MISSING:
                    self._lived.discard(key)
                    self._changed_at.pop(key, None)
                    self.clock.forget(key)
                else:
                    self._schedule(key, change.new)

    def _expire_due(self, key: str) -> None:
        """The clock says ``key``'s deadline passed. If the key changed since
        its idle deadline was written, the deadline moves on (written again,
        so that every process and a restart know it); else the key expires:
        one commit deleting it and its deadline, if both are still where they
        were seen (so among processes exactly one expiry lands, and a write
        that lands first keeps the key alive)."""
        companion = DEADLINE + key
        while True:
            stored_value, written = self.entry(companion)
            stored = None if stored_value is MISSING else parse_stored(stored_value)
            if stored is None:
                return  # deleted with its key, or its lifetime taken away
            value, version = self.entry(key)
            now = time.time()
            expected = {companion: written}
            if value is MISSING:  # (the key went by a path that left its deadline: it goes too)
                changes = self._commit_as(expected, {}, (companion,), "expired")
            else:
                expected[key] = version
                due = self._due(key, stored, written, version)
                if due > now:
                    if due == stored[0]:
                        self.clock.schedule(key, due)
                        return
                    changes = self._commit_as(expected, {companion: (due, stored[1])}, (), "")
                else:
                    life = f"idle {stored[1]:g} s" if stored[1] is not None else "its time"
                    self._expiring.on = True
                    try:
                        changes = self._commit_as(expected, {}, (key, companion), f"expired ({life})")
                    finally:
                        self._expiring.on = False
                    if changes is not None:
                        self._saw_companions(changes)
                        self._announce(changes, EXPIRED)
                        return
                    continue
            if changes is not None:
                self._saw_companions(changes)
                self._announce(changes, LOCAL)
                return

    def _commit_as(
        self, expected: dict[str, int], writes: dict[str, Any], deletes: tuple[str, ...], who: str
    ) -> tuple[Change, ...] | None:
        self._open()
        return self.committer.commit(
            expected,
            writes,
            deletes,
            since=0,
            conflicts=None,
            tokens={},
            who=who or self._who(),
            respect=False,
        )

    # -- history ----------------------------------------------------------------

    def records(self, key: str | None = None, limit: int | None = None) -> list[Record]:
        """The commits the history keeps (that changed ``key``), newest first."""
        self._open()
        return self.mirror.records(key, limit)

    def changed_since(self, seq: int) -> list[str]:
        """The keys the commits after ``seq`` changed (``at`` checks that
        the history reaches back that far)."""
        return self.mirror.changed_since(seq)

    def at(self, seq: int) -> StoreState:
        """The state right after commit ``seq`` (``LookupError`` when the
        history no longer reaches back to it)."""
        if type(seq) is not int:
            raise ServerStateTypeError(
                None, f"server_state.at(seq): seq must be an int (a commit's seq), got {seq!r}."
            )
        self._open()
        return self.mirror.at(seq)

    # -- watchers ---------------------------------------------------------------

    def watch(
        self,
        keys: Iterable[str] | None,
        callback: Watcher,
        *,
        with_version: bool = False,
        with_cause: bool = False,
    ) -> Callable[[], None]:
        """Subscribe ``callback`` to changes of ``keys`` (all keys when None,
        each key once however often it is named); returns the function that
        ends this one subscription."""
        slots: tuple[str | None, ...] = (None,) if keys is None else tuple(dict.fromkeys(keys))
        subscription = _Subscription(callback, with_version, with_cause)
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

    def notify(self, changes: Iterable[Change], origin: Origin | None = None) -> None:
        """Call the watchers of ``changes`` (a commit made elsewhere: with its
        ``origin``). Call with no lock held."""
        watchers = self._watchers  # lists are replaced, never mutated: no lock needed
        if not watchers:
            return
        cause = "expired" if origin is not None and origin.expired else "write"
        for change in changes:
            if change.key[:1] == HIDDEN:
                continue  # the library's own keys: no watcher's business
            for sub in (*watchers.get(change.key, ()), *watchers.get(None, ())):
                try:
                    args: tuple[Any, ...] = (change.key, change.old, change.new)
                    if sub.with_version:
                        args += (change.version,)
                    if sub.with_cause:
                        args += (cause,)
                    sub.callback(*args)
                except Exception:
                    _LOG.exception("server_state watcher %r failed for key %r", sub.callback, change.key)


def MemoryStore() -> Store:
    """A store in this process's memory (the default)."""
    return Store(MemoryCommitter())


def store_from_url(url: str | None, **options: Any) -> Store:
    """The store a ``SERVER_STATE_URL`` names (checked now, connected on first use)."""
    return Store(committer_from_url(url, **options))


def _local() -> Origin:
    return LOCAL


EXPIRED = Origin(expired=True)  # the origin of an expiry made here


_writers = threading.local()


def _thread_writer() -> str:
    """``"thread <name>"``, once per thread."""
    try:
        return _writers.label  # type: ignore[no-any-return]
    except AttributeError:
        label = _writers.label = "thread " + threading.current_thread().name
        return label


def _transact_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ServerStateTypeError(
            None, f"server_state keys must be str; transact(fn) set the key {key!r} ({type(key).__name__})."
        )
    return normalise_key(key)


@dataclass(frozen=True, slots=True, eq=False)
class _Subscription:
    callback: Watcher
    with_version: bool
    with_cause: bool = False
