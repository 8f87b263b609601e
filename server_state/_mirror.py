"""The state as this process holds it: a persistent map swapped atomically.

Every store keeps one ``Mirror``. With the memory backend it is the state
itself; with a shared backend (Redis) it is this replica's copy, which the
committer brings forward commit by commit. Reads never leave it and take no
lock.

- The state at an instant is a ``StoreState``: a pyrsistent map of stored
  values and the sequence number of the last commit it contains. It is never
  mutated, so a snapshot is O(1) and consistent by construction.
- Every commit is applied under ``lock`` (the root lock), gets the next
  sequence number, and that number becomes the version of each key it
  changed. Versions therefore only grow, for every key, across deletes and
  re-creations.
- A commit does not pay for a persistent-map update (``PMap.set`` is ~3 µs of
  Python). It updates ``latest``, a plain dict of the live keys (O(1) reads of
  the newest value), and records the write in ``_pending``. The persistent map
  takes the pending writes in one evolver pass when a snapshot or a
  transaction asks for it; that pass runs *outside* the root lock, so no
  operation holds the root lock longer than a commit.

Invariant (checked by ``check_invariants`` in the hypothesis model):

    fold(_values, _folding, _pending) == {k: v for k, (v, _) in latest.items()}

where ``fold`` applies the dicts of writes left to right (``MISSING`` deletes)
and ``_folding`` is the batch of pending writes being folded right now (None
between folds). ``folded`` is None or ``StoreState(fold(...), seq)``: the newest state once
folded, which ``state`` returns without a lock.

Deleted keys keep their last version in ``_gone`` (bounded: the oldest are
forgotten, their versions raised into ``_floor``). An absent key's version is
its ``_gone`` entry or ``_floor``: never lower than the version of its last
delete, so anyone who saw it absent is stale exactly when it is set again.

What a committer uses (under ``lock`` unless said otherwise): ``seq``,
``latest`` (read only), ``entry``, ``still``, ``apply``, ``apply_one`` (takes
the lock itself), ``wait_turn`` and ``history``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from pyrsistent import PMap, pmap

from ._base import MISSING, Change, StoreState
from ._history import History, Record, keys_of, undo
from ._keys import HIDDEN

__all__ = ["GONE_KEPT", "Mirror"]

# Deleted keys whose exact last version is kept; older ones share ``_floor``.
GONE_KEPT = 4096

_new = tuple.__new__


class Mirror:
    """The newest state, its versions and its history, in this process."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[Any, int]] = {}  # live keys, first-set order
        self.hidden = 0  # how many live keys are the library's own (``_keys.hidden``)
        self._gone: dict[str, int] = {}  # deleted key -> version of its delete (oldest first)
        self._floor = 0  # every forgotten deleted key's version is at most this
        self.tokens: dict[str, Any] = {}  # content fingerprints of by-reference values
        self.seq = 0
        self._values: PMap[str, Any] = pmap()
        self._pending: dict[str, Any] = {}  # writes not yet in _values (MISSING: deleted)
        self._folding: dict[str, Any] | None = None
        self.folded: StoreState | None = StoreState(self._values, 0)  # None until the next fold
        self.lock = threading.Lock()  # the root lock: every commit is applied under it
        self._fold_lock = threading.Lock()  # one folder at a time; never taken inside the root lock
        self.exclusive: int | None = None  # thread running a transaction alone
        self.exclusive_over = threading.Condition(self.lock)
        self.history = History()

    # -- reads: lock-free -------------------------------------------------------

    @property
    def state(self) -> StoreState:
        """The state at the newest commit, as one immutable value."""
        snapshot = self.folded
        if snapshot is not None:
            return snapshot
        with self._fold_lock:
            with self.lock:
                snapshot = self.folded
                if snapshot is not None:
                    return snapshot
                batch, base, seq = self._pending, self._values, self.seq
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
            with self.lock:
                self._values, self._folding = values, None
                snapshot = StoreState(values, seq)
                if self.seq == seq:
                    self.folded = snapshot
            return snapshot

    def __len__(self) -> int:
        return len(self.latest)

    def entry(self, key: str) -> tuple[Any, int]:
        """``(stored value or MISSING, version)`` of the newest commit."""
        entry = self.latest.get(key)
        if entry is None:
            return MISSING, self._gone.get(key, self._floor)
        return entry

    def keys(self) -> list[str]:
        """Present keys in first-set order (``list()`` copies the dict in one step)."""
        return list(self.latest)

    def ordered_keys(self, state: StoreState) -> list[str]:
        """The keys of ``state`` in the order ``keys()`` gives (first set
        first); keys deleted since ``state`` come last."""
        values, seq = state.values, state.seq
        out = [k for k, (_, version) in list(self.latest.items()) if version <= seq or k in values]
        gone = []
        if len(out) < len(values):
            listed = set(out)
            gone = [k for k in values if k not in listed]
            out += gone
        if self.hidden or gone:  # the library's own keys are not listed
            out = [k for k in out if k[:1] != HIDDEN]
        return out

    # -- commits: under the root lock ----------------------------------------------

    def wait_turn(self) -> None:
        """Under the root lock, while another thread runs a transaction
        alone: wait until it is over (the lock is released meanwhile)."""
        me = threading.get_ident()
        while self.exclusive is not None and self.exclusive != me:
            self.exclusive_over.wait()

    def still(self, expected: dict[str, int] | None, since: int, conflicts: AbstractSet[str] | None) -> bool:
        """Whether what a commit depends on is as it was: the ``expected``
        versions; else no key of ``conflicts`` advanced past ``since`` (no
        commit at all after ``since`` when ``conflicts`` is None)."""
        entry = self.entry
        if expected is not None:
            return all(entry(key)[1] == version for key, version in expected.items())
        if conflicts is None:
            return self.seq == since
        return all(entry(key)[1] <= since for key in conflicts)

    def apply_one(
        self, key: str, expected: int, value: Any, token: Any, who: str, respect: bool = False
    ) -> Change | None:
        """The hot path of every write: set one key if it is still at
        ``expected`` (takes the root lock). None: it moved, retry. The
        signature is the committer protocol's ``commit_one``, so that the
        memory committer hands this very method to the engine; ``respect``
        asks a shared backend to wait for other processes' key locks, and
        one process has none."""
        history = self.history
        with self.lock:
            if self.exclusive is not None:
                self.wait_turn()
            latest = self.latest
            entry = latest.get(key)
            if entry is None:
                if self._gone.get(key, self._floor) != expected:
                    return None
                old = MISSING
            else:
                old, version = entry
                if version != expected:
                    return None
            seq = self.seq = self.seq + 1
            latest[key] = (value, seq)
            if entry is None:
                # Only now: a lock-free entry() between the two would see
                # neither and read the lower _floor (see apply).
                self._gone.pop(key, None)
                if key[:1] == HIDDEN:
                    self.hidden += 1
            self._pending[key] = value
            if token is not None:
                self.tokens[key] = token
            elif self.tokens:
                self.tokens.pop(key, None)
            self.folded = None
            change = _new(Change, (key, old, value, seq))  # Change(...) without NamedTuple's Python __new__
            if who and history.limit:
                history.record_one(seq, key, old, value, who)
        return change

    def apply(
        self, writes: dict[str, Any], deletes: Iterable[str], tokens: dict[str, Any], who: str = ""
    ) -> tuple[Change, ...]:
        """Under the root lock: one commit's writes and deletes at the next
        sequence number, recorded in the history as made by ``who``."""
        seq = self.seq + 1
        latest = self.latest
        changes = []
        pending = self._pending
        for key, value in writes.items():
            entry = latest.get(key)
            if entry is None:
                old = MISSING
                if key[:1] == HIDDEN:
                    self.hidden += 1
            else:
                old = entry[0]
            changes.append(Change(key, old, value, seq))
            latest[key] = (value, seq)
            pending[key] = value
            self._gone.pop(key, None)
            if key in tokens:
                self.tokens[key] = tokens[key]
            else:
                self.tokens.pop(key, None)
        for key in deletes:
            entry = latest.get(key)
            if entry is None:
                continue
            changes.append(Change(key, entry[0], MISSING, seq))
            self.tokens.pop(key, None)
            # Its version into _gone before it leaves latest: entry() reads
            # both without the root lock, and a reader between the two steps
            # taken the other way round would see _floor, lower than the
            # version it saw a moment before (versions must never go back).
            self._forget(key, seq)
            del latest[key]
            if key[:1] == HIDDEN:
                self.hidden -= 1
        self.seq = seq
        self.folded = None
        done = tuple(changes)
        if who and done and self.history.limit:
            if len(done) == 1:
                self.history.record_one(seq, done[0].key, done[0].old, done[0].new, who)
            else:
                self.history.record(seq, done, who)
        return done

    def reset(
        self,
        entries: dict[str, tuple[Any, int]],
        gone: dict[str, int],
        floor: int,
        seq: int,
        tokens: dict[str, Any],
        who: str = "",
    ) -> tuple[Change, ...]:
        """Under the root lock: the state of a source of truth that numbers
        its commits as this mirror does (SQLite), at its commit ``seq`` (not
        behind this mirror's): ``entries`` the live keys' stored values and
        versions in first-set order, ``gone`` deleted keys' versions (oldest
        first), ``floor`` the version of any other absent key. Only the keys
        whose version moved change; they keep the versions the source gave
        them. One history record when ``who``."""
        if seq < self.seq:
            raise ValueError(f"server_state: a mirror at commit {self.seq} cannot go back to {seq}")
        latest = self.latest
        changes = []
        for key, (value, version) in entries.items():
            entry = latest.get(key)
            if entry is not None and entry[1] == version:
                continue
            changes.append(Change(key, MISSING if entry is None else entry[0], value, version))
        for key in [k for k in latest if k not in entries]:
            changes.append(Change(key, latest[key][0], MISSING, gone.get(key, floor)))
        # Live keys first, then the versions of absent keys, then the keys
        # removed: a lock-free entry() in between never sees a version lower
        # than one it saw before (see apply).
        if not latest:  # a first load: keep the source's order
            latest.update(entries)
        else:
            for change in changes:
                if change.new is not MISSING:
                    latest[change.key] = (change.new, change.version)
        kept = {k: v for k, v in gone.items() if k not in entries}
        while len(kept) > GONE_KEPT:
            floor = max(floor, kept.pop(next(iter(kept))))
        self._floor = max(self._floor, floor)
        self._gone = kept
        for change in changes:
            if change.new is MISSING:
                del latest[change.key]
        self.hidden = sum(1 for key in latest if key[:1] == HIDDEN)
        self.tokens = {k: t for k, t in tokens.items() if k in entries}
        for change in changes:
            self._pending[change.key] = change.new
        self.seq = seq
        self.folded = None
        done = tuple(changes)
        if who and done and self.history.limit:
            self.history.record(seq, done, who)
        return done

    def _forget(self, key: str, seq: int) -> None:
        """A delete: keep the key's version in ``_gone`` (bounded) and drop
        its pending write if the map never had it, so that per-user keys
        created and deleted leave nothing behind."""
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
            self._floor = max(self._floor, gone[oldest])  # raised first: see apply
            del gone[oldest]

    # -- history ----------------------------------------------------------------

    def records(self, key: str | None = None, limit: int | None = None) -> list[Record]:
        """The commits the history keeps (that changed ``key``), newest first."""
        with self.lock:
            return self.history.records(key, limit)

    def changed_since(self, seq: int) -> list[str]:
        """The keys the commits after ``seq`` changed (``at`` checks that
        the history reaches back that far)."""
        with self.lock:
            newer = self.history.newer(seq, self.seq)
        return list(dict.fromkeys(key for record in reversed(newer) for key in keys_of(record)))

    def at(self, seq: int) -> StoreState:
        """The state right after commit ``seq``: the newest state with the
        newer commits undone, O(what they changed). ``LookupError`` when the
        history no longer reaches back to ``seq`` (or ``seq`` is ahead)."""
        state = self.state
        if seq == state.seq:
            return state
        with self.lock:
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

    def check_invariants(self) -> None:
        """For tests: the invariant of the module docstring."""
        with self._fold_lock, self.lock:
            assert self._folding is None
            folded = dict(self._values)
            for key, value in self._pending.items():
                if value is MISSING:
                    folded.pop(key, None)
                else:
                    folded[key] = value
            live = {k: v for k, (v, _) in self.latest.items()}
            assert folded.keys() == live.keys(), (folded.keys(), live.keys())
            assert all(folded[k] is live[k] for k in live)
            assert not (self._gone.keys() & live.keys())
            assert all(version <= self.seq for _, version in self.latest.values())
            assert len(self._gone) <= GONE_KEPT
            if self.folded is not None:
                assert self.folded.seq == self.seq
                assert dict(self.folded.values) == folded
