"""The in-memory store: a persistent map swapped atomically.

How it realises "a persistent map swapped atomically under one root lock",
and what it trades for speed:

- The state at an instant is a ``StoreState``: a pyrsistent map of stored
  values and the sequence number of the last commit it contains. It is never
  mutated, so a snapshot is O(1) and consistent by construction.
- Every commit happens under the root lock, gets the next sequence number, and
  that number becomes the version of each key it changed. Versions therefore
  only grow, for every key, across deletes and re-creations.
- A commit does not pay for a persistent-map update (``PMap.set`` is ~3 µs of
  Python). It updates ``_latest``, a plain dict of the live keys (O(1) reads of
  the newest value), and records the write in ``_pending``. The persistent map
  takes the pending writes in one evolver pass when a snapshot or a
  transaction asks for it; that pass runs *outside* the root lock, so no
  operation holds the root lock longer than a commit.

Invariant (checked by ``_check_invariants`` in the hypothesis model):

    fold(_values, _folding, _pending) == {k: v for k, (v, _) in _latest.items()}

where ``fold`` applies the dicts of writes left to right (``MISSING`` deletes)
and ``_folding`` is the batch of pending writes being folded right now (None
between folds). ``_snapshot`` is None or ``StoreState(fold(...), _seq)``.

Deleted keys keep their last version in ``_gone`` (bounded: the oldest are
forgotten, their versions raised into ``_floor``). An absent key's version is
its ``_gone`` entry or ``_floor``: never lower than the version of its last
delete, so anyone who saw it absent is stale exactly when it is set again.

No Streamlit import here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap

from ._errors import ServerStateError, ServerStateKeyError, ServerStateTypeError
from ._history import Change, History, Record, keys_of, undo
from ._txmap import TxMap, TxRecord, normalise_key
from ._values import content_token, freeze, unchanged

__all__ = ["MISSING", "Change", "MemoryStore", "StoreState", "Watcher", "store_from_url"]

_LOG = logging.getLogger("server_state")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"  # pickles as the module global: stays the one sentinel


MISSING: Any = _Missing()


class StoreState(NamedTuple):
    """One instant of the store: never mutated.

    A key's value in it is at most ``seq`` old, so a reader of a snapshot is
    bound at ``seq``: stale exactly when the key advanced after the snapshot."""

    values: PMap[str, Any]  # key -> stored value
    seq: int  # the last commit's sequence number


Watcher = Callable[..., None]

# Deleted keys whose exact last version is kept; older ones share ``_floor``.
GONE_KEPT = 4096
# Failed optimistic attempts of a transaction before it runs exclusively.
TRANSACT_ATTEMPTS = 3

_new = tuple.__new__
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


class MemoryStore:
    """The default backend: one process, many threads."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[Any, int]] = {}  # live keys, first-set order
        self._gone: dict[str, int] = {}  # deleted key -> version of its delete (oldest first)
        self._floor = 0  # every forgotten deleted key's version is at most this
        self._tokens: dict[str, Any] = {}  # content fingerprints of by-reference values
        self._seq = 0
        self._values: PMap[str, Any] = pmap()
        self._pending: dict[str, Any] = {}  # writes not yet in _values (MISSING: deleted)
        self._folding: dict[str, Any] | None = None
        self._snapshot: StoreState | None = StoreState(self._values, 0)
        self._root_lock = threading.Lock()
        self._fold_lock = threading.Lock()  # one folder at a time; never taken inside the root lock
        self._exclusive: int | None = None  # thread running a transaction alone
        self._exclusive_over = threading.Condition(self._root_lock)
        self._watchers: dict[str | None, list[_Subscription]] = {}
        self._watchers_lock = threading.Lock()
        self.history = History()
        self._writer: Callable[[], str] = _thread_writer  # who commits, for the history

    # -- the seam ---------------------------------------------------------------

    # The lock the facade gives each key (``server_state_lock[k]``): None for
    # a plain re-entrant lock; a backend shared by replicas gives one that
    # also holds a lease there.
    lock_factory: Callable[[str, threading.RLock], Any] | None = None
    url = "memory://"
    # Whether other processes commit too (then a transaction that conflicts
    # while it runs alone here is not conflicting with itself).
    shared = False

    def attach(
        self, on_remote: Callable[..., None], origin: Callable[[], Any], writer: Callable[[], str] | None = None
    ) -> None:
        """The facade's hooks: ``on_remote(changes, origin)`` announces
        commits made elsewhere; ``origin()`` is what a commit made here
        carries (one process holds every commit here: neither is needed);
        ``writer()`` names who commits, for the history."""
        if writer is not None:
            self._writer = writer

    @property
    def used(self) -> bool:
        """Whether anything was ever committed (``configure`` refuses then)."""
        return self._seq > 0

    def close(self) -> None:
        """Stop what the backend runs (nothing, in memory)."""

    # -- reads: lock-free -------------------------------------------------------

    @property
    def state(self) -> StoreState:
        """The state at the newest commit, as one immutable value."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._fold_lock:
            with self._root_lock:
                snapshot = self._snapshot
                if snapshot is not None:
                    return snapshot
                batch, base, seq = self._pending, self._values, self._seq
                self._pending, self._folding = {}, batch
            # The long part, with writers free to commit meanwhile: the result
            # is the state at ``seq``, an instant within this call.
            evolver = base.evolver()
            for key, value in batch.items():
                if value is not MISSING:
                    evolver[key] = value
                elif key in evolver:  # type: ignore[operator]  # set and deleted since: never in the map
                    del evolver[key]
            values = evolver.persistent()
            with self._root_lock:
                self._values, self._folding = values, None
                snapshot = StoreState(values, seq)
                if self._seq == seq:
                    self._snapshot = snapshot
            return snapshot

    def __len__(self) -> int:
        return len(self._latest)

    def entry(self, key: str) -> tuple[Any, int]:
        """``(stored value or MISSING, version)`` of the newest commit."""
        entry = self._latest.get(key)
        if entry is None:
            return MISSING, self._gone.get(key, self._floor)
        return entry

    def version(self, key: str) -> int:
        return self.entry(key)[1]

    def keys(self) -> list[str]:
        """Present keys in first-set order (``list()`` copies the dict in one step)."""
        return list(self._latest)

    def ordered_keys(self, state: StoreState) -> list[str]:
        """The keys of ``state`` in the order ``keys()`` gives (first set
        first); keys deleted since ``state`` come last."""
        values, seq = state.values, state.seq
        out = [k for k, (_, version) in list(self._latest.items()) if version <= seq or k in values]
        if len(out) < len(values):
            listed = set(out)
            out += [k for k in values if k not in listed]
        return out

    # -- writes ---------------------------------------------------------------

    def set(self, key: str, value: Any) -> Change | None:
        """Store ``value`` (already frozen). Returns the change, or None when
        nothing changed. Write methods return changes and call nobody: the
        caller notifies watchers once it holds no lock."""
        refuse_missing(key, value)
        token = None if type(value) in _NO_TOKEN else content_token(value)
        while True:
            entry = self._latest.get(key)
            if entry is None:
                version = self._gone.get(key, self._floor)
            else:
                old, version = entry
                # The same object again is unchanged, unless it is one whose
                # content we fingerprint and it was changed in place.
                same = token is None or token == self._tokens.get(key) if old is value else unchanged(old, value)
                if same:
                    if self._confirm(key, version):
                        return None
                    continue
            change = self._commit_one(key, version, value, token)
            if change is not None:
                return change

    def touch(self, key: str) -> Change:
        """Advance ``key``'s version keeping its newest value: an in-place
        change of an object stored by reference, announced by the caller."""
        while True:
            value, version = self.entry(key)
            if value is MISSING:
                if not self._confirm(key, version):
                    continue
                raise ServerStateKeyError(key, f"server_state has no key {key!r}; set it first.")
            token = None if type(value) in _NO_TOKEN else content_token(value)
            change = self._commit_one(key, version, value, token)
            if change is not None:
                return change

    def delete(self, key: str) -> Change:
        while True:
            old, version = self.entry(key)
            if old is MISSING:
                if not self._confirm(key, version):
                    continue  # a copy that lags: the key may exist by now
                raise ServerStateKeyError(
                    key,
                    f"server_state has no key {key!r} to delete; check with `{key!r} in server_state` first.",
                )
            changes = self._commit({key: version}, {}, (key,))
            if changes is not None:
                return changes[0]

    def update(
        self, key: str, fn: Callable[[Any], Any], default: Any = MISSING
    ) -> tuple[Any, int, Change | None]:
        """Compare-and-set: ``fn(current)`` is computed outside every internal
        lock and committed only if ``key`` did not change meanwhile, else
        retried. Returns the value now stored, its version, and the change."""
        while True:
            entry = self._latest.get(key)
            if entry is None:
                current, version = MISSING, self._gone.get(key, self._floor)
            else:
                current, version = entry
            exists = current is not MISSING
            if not exists:
                if default is MISSING:
                    if not self._confirm(key, version):
                        continue
                    raise ServerStateKeyError(
                        key,
                        f"server_state has no key {key!r} to update; pass a default "
                        f"(server_state.update({key!r}, fn, default=0)) or assign it first.",
                    )
                current = freeze(default, key)
            new = fn(current)
            if type(new) in _SCALAR:  # the counter's hot path: nothing to freeze or fingerprint
                token = None
            else:
                refuse_missing(key, new)
                new = freeze(new, key, previous=current)
                token = None if type(new) in _NO_TOKEN else content_token(new)
            if exists and unchanged(current, new):
                if self._confirm(key, version):
                    return current, version, None
                continue
            change = self._commit_one(key, version, new, token)
            if change is not None:
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
        (other commits wait), so it always finishes. ``guard(keys, wait)`` is
        held around the commit (the facade's per-key locks, so a transaction
        never lands inside a locked read-modify-write). Returns the map
        committed: ``fn``'s result with its values in stored form."""
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
        while True:
            with guard(keys, True):
                with self._root_lock:
                    self._wait_exclusive()
                    outer, self._exclusive = self._exclusive, me
                try:
                    done, more = self._transact_once(fn, guard, wait=False)
                finally:
                    with self._root_lock:
                        self._exclusive = outer
                        self._exclusive_over.notify_all()
            if isinstance(done, tuple):
                return done
            if done is None and not self.shared:
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
        result = fn(TxMap.wrap(base, record))
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
            # whole map: compare everything, conflict with any commit.
            given = {_transact_key(key): value for key, value in committed.items()}
            if len(given) != len(committed):  # str-subclass keys: rebuild with plain ones
                committed = pmap(given)
            touched = {key: given.get(key, _ABSENT) for key in {*base, *given}}
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
        with guard(keys, wait) as held:
            if not held:
                return BUSY, keys
            changes = self._commit(None, writes, tuple(deletes), since=state.seq, conflicts=conflicts)
        if changes is None:
            return None, keys
        return (committed, changes), keys

    def _wait_exclusive(self) -> None:
        """Called with the root lock held while another thread runs a
        transaction alone: wait until it is over (the lock is released
        meanwhile)."""
        me = threading.get_ident()
        while self._exclusive is not None and self._exclusive != me:
            self._exclusive_over.wait()

    def _confirm(self, key: str, version: int) -> bool:
        """Whether ``key`` is still at ``version``: an equal write changes
        nothing only if what it was compared with is the newest value (here
        always; a backend whose local copy can lag asks its server)."""
        return self.entry(key)[1] == version

    def _commit_one(self, key: str, expected: int, value: Any, token: Any) -> Change | None:
        """``_commit`` for one key set: the hot path of every write."""
        history = self.history
        who = self._writer() if history.limit else ""
        with self._root_lock:
            if self._exclusive is not None:
                self._wait_exclusive()
            latest = self._latest
            entry = latest.get(key)
            if entry is None:
                if self._gone.get(key, self._floor) != expected:
                    return None
                old = MISSING
            else:
                old, version = entry
                if version != expected:
                    return None
            seq = self._seq = self._seq + 1
            latest[key] = (value, seq)
            if entry is None:
                # Only now: a lock-free entry() between the two would see
                # neither and read the lower _floor (see _apply).
                self._gone.pop(key, None)
            self._pending[key] = value
            if token is not None:
                self._tokens[key] = token
            elif self._tokens:
                self._tokens.pop(key, None)
            self._snapshot = None
            change = _new(Change, (key, old, value, seq))  # Change(...) without NamedTuple's Python __new__
            if who:
                history.record_one(seq, key, old, value, who)
        return change

    def _commit(
        self,
        expected: dict[str, int] | None,
        writes: dict[str, Any],
        deletes: tuple[str, ...],
        *,
        since: int = 0,
        conflicts: AbstractSet[str] | None = None,
        tokens: dict[str, Any] | None = None,
    ) -> tuple[Change, ...] | None:
        """Apply the writes if the expected versions are unchanged (or, for a
        transaction, no key of ``conflicts`` advanced past ``since``; all keys
        when ``conflicts`` is None). None tells the caller to retry.
        ``tokens``: the writes' content fingerprints, when already known."""
        tokens = _tokens_of(writes) if tokens is None else tokens
        who = self._writer() if self.history.limit else ""
        with self._root_lock:
            if self._exclusive is not None:
                self._wait_exclusive()
            if not self._still(expected, since, conflicts):
                return None
            return self._apply(writes, deletes, tokens, self._seq + 1, who)

    def _still(self, expected: dict[str, int] | None, since: int, conflicts: AbstractSet[str] | None) -> bool:
        """Under the root lock: whether what a commit depends on is as it
        was (see ``_commit``)."""
        entry = self.entry
        if expected is not None:
            return all(entry(key)[1] == version for key, version in expected.items())
        if conflicts is None:
            return self._seq == since
        return all(entry(key)[1] <= since for key in conflicts)

    def _apply(
        self, writes: dict[str, Any], deletes: Iterable[str], tokens: dict[str, Any], seq: int, who: str = ""
    ) -> tuple[Change, ...]:
        """Under the root lock: one commit's writes and deletes at version
        ``seq`` (greater than every version so far), recorded in the history
        as made by ``who``."""
        latest = self._latest
        changes = []
        pending = self._pending
        for key, value in writes.items():
            entry = latest.get(key)
            old = MISSING if entry is None else entry[0]
            changes.append(Change(key, old, value, seq))
            latest[key] = (value, seq)
            pending[key] = value
            self._gone.pop(key, None)
            if key in tokens:
                self._tokens[key] = tokens[key]
            else:
                self._tokens.pop(key, None)
        for key in deletes:
            entry = latest.get(key)
            if entry is None:
                continue
            changes.append(Change(key, entry[0], MISSING, seq))
            self._tokens.pop(key, None)
            # Its version into _gone before it leaves _latest: entry() reads
            # both without the root lock, and a reader between the two steps
            # taken the other way round would see _floor, lower than the
            # version it saw a moment before (versions must never go back).
            self._forget(key, seq)
            del latest[key]
        self._seq = seq
        self._snapshot = None
        done = tuple(changes)
        if who and done and self.history.limit:
            if len(done) == 1:
                self.history.record_one(seq, done[0].key, done[0].old, done[0].new, who)
            else:
                self.history.record(seq, done, who)
        return done

    # -- history ----------------------------------------------------------------

    def records(self, key: str | None = None, limit: int | None = None) -> list[Record]:
        """The commits the history keeps (that changed ``key``), newest first."""
        with self._root_lock:
            return self.history.records(key, limit)

    def changed_since(self, seq: int) -> list[str]:
        """The keys the commits after ``seq`` changed (``at`` checks that
        the history reaches back that far)."""
        with self._root_lock:
            newer = self.history.newer(seq, self._seq)
        return list(dict.fromkeys(key for record in reversed(newer) for key in keys_of(record)))

    def at(self, seq: int) -> StoreState:
        """The state right after commit ``seq``: the newest state with the
        newer commits undone, O(what they changed). ``LookupError`` when the
        history no longer reaches back to ``seq`` (or ``seq`` is ahead)."""
        if type(seq) is not int:
            raise ServerStateTypeError(
                None, f"server_state.at(seq): seq must be an int (a commit's seq), got {seq!r}."
            )
        state = self.state
        if seq == state.seq:
            return state
        with self._root_lock:
            newer = self.history.newer(seq, state.seq)
            span = self.history.span()
        # Every commit from seq + 1 to state.seq must be kept to be undone.
        if not (0 <= seq < state.seq and len(newer) == state.seq - seq and newer[-1][0] == seq + 1):
            kept = f"commits {span[0]}..{span[1]}" if span else "no commits"
            raise LookupError(
                f"server_state has no state at commit {seq}: the history keeps {kept} "
                f"(the last {self.history.limit} within {self.history.max_age:g} s; "
                "server_state.configure(history=..., history_age=...) keeps more); the state now is at "
                f"commit {state.seq}."
            )
        return StoreState(undo(state.values, newer, MISSING), seq)

    def _forget(self, key: str, seq: int) -> None:
        """A delete, under the root lock: keep the key's version in ``_gone``
        (bounded) and drop its pending write if the map never had it, so that
        per-user keys created and deleted leave nothing behind."""
        folding = self._folding
        in_map = (
            folding[key] is not MISSING if folding is not None and key in folding else key in self._values
        )
        if in_map:
            self._pending[key] = MISSING
        else:
            self._pending.pop(key, None)
        gone = self._gone
        gone[key] = seq
        if len(gone) > GONE_KEPT:
            oldest = next(iter(gone))
            self._floor = max(self._floor, gone[oldest])  # raised first: see _apply
            del gone[oldest]

    def _check_invariants(self) -> None:
        """For tests: the invariant of the module docstring."""
        with self._fold_lock, self._root_lock:
            assert self._folding is None
            folded = dict(self._values)
            for key, value in self._pending.items():
                if value is MISSING:
                    folded.pop(key, None)
                else:
                    folded[key] = value
            live = {k: v for k, (v, _) in self._latest.items()}
            assert folded.keys() == live.keys(), (folded.keys(), live.keys())
            assert all(folded[k] is live[k] for k in live)
            assert not (self._gone.keys() & live.keys())
            assert all(version <= self._seq for _, version in self._latest.values())
            assert len(self._gone) <= GONE_KEPT
            if self._snapshot is not None:
                assert self._snapshot.seq == self._seq
                assert dict(self._snapshot.values) == folded

    # -- watchers ---------------------------------------------------------------

    def watch(
        self, keys: Iterable[str] | None, callback: Watcher, *, with_version: bool = False
    ) -> Callable[[], None]:
        """Subscribe ``callback`` to changes of ``keys`` (all keys when None,
        each key once however often it is named); returns the function that
        ends this one subscription."""
        slots: tuple[str | None, ...] = (None,) if keys is None else tuple(dict.fromkeys(keys))
        subscription = _Subscription(callback, with_version)
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
                    if sub.with_version:
                        sub.callback(change.key, change.old, change.new, change.version)
                    else:
                        sub.callback(change.key, change.old, change.new)
                except Exception:
                    _LOG.exception("server_state watcher %r failed for key %r", sub.callback, change.key)


# Immutable scalars: stored as they are (freeze returns them unchanged).
_SCALAR: frozenset[type] = frozenset({type(None), bool, int, float, str, bytes})

# Stored types that are never content-fingerprinted: asking would only cost.
_NO_TOKEN: frozenset[type] = frozenset({type(None), bool, int, float, str, bytes, tuple, frozenset})


_writers = threading.local()


def _thread_writer() -> str:
    """``"thread <name>"``, once per thread."""
    try:
        return _writers.label  # type: ignore[no-any-return]
    except AttributeError:
        label = _writers.label = "thread " + threading.current_thread().name
        return label


def _tokens_of(writes: dict[str, Any]) -> dict[str, Any]:
    return {k: t for k, v in writes.items() if type(v) not in _NO_TOKEN and (t := content_token(v)) is not None}


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


def store_from_url(url: str | None, **options: Any) -> Any:
    """The backend a ``SERVER_STATE_URL`` names (see ``server_state.backends``)."""
    from .backends import store_from_url as resolve

    return resolve(url, **options)
