"""The binding tracker: which session showed which key at which version, and
who must rerun when a key advances.

A session is bound to what its latest run read, per scope (``None`` for the
whole app, else the fragment id the read happened in), at the lowest version
that run read. When a key advances it is *announced*; a session is stale when
one of its bound keys was announced at a version newer than it read. Stale
sessions are rerun only once their own run has finished (the caller decides
when that is), only the stale fragment when every stale read was inside one.

No Streamlit import here: sessions are ids, their event loop an opaque handle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = ["BindingTracker", "RerunPlan", "RunRecord", "SessionEntry", "current_run"]

_LOG = logging.getLogger("server_state")

# The run in progress on this thread (and on parallel fragment workers, which
# copy the context). Set when a run starts, cleared when it ends.
current_run: ContextVar[RunRecord | None] = ContextVar("server_state_run", default=None)

Scope = str | None  # None: the whole app; else a fragment id


class _Advance(Protocol):
    """A key that advanced to a version (the store's ``Change``)."""

    @property
    def key(self) -> str: ...

    @property
    def version(self) -> int: ...

# Rounds of reruns caused by reruns before we call it a loop. A user action or
# a background write starts at round 0; every pushed rerun adds one.
MAX_ROUNDS = 10
_CHAIN_KEYS_KEPT = 16
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


class Announcement(NamedTuple):
    version: int
    round: int
    chain: frozenset[str]  # keys of the rerun chain that led here (not ``key`` itself)
    key: str


@dataclass(slots=True, eq=False)
class SessionEntry:
    sid: str
    handle: Any  # the session's event loop, opaque here
    bound: dict[str, dict[Scope, int]] = field(default_factory=dict)
    run: RunRecord | None = None
    runs_started: int = 0
    flush_scheduled: bool = False
    pending_round: int = 0
    pending_chain: frozenset[str] = frozenset()
    waiter: Any = None  # the task waiting for the session to settle, if any


@dataclass(slots=True, eq=False)
class RunRecord:
    entry: SessionEntry
    number: int
    fragment_ids: frozenset[str] | None  # None: a full run
    round: int
    chain: frozenset[str]
    reads: dict[str, dict[Scope, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RerunPlan:
    """What to rerun: ``fragments`` alone when every stale read was inside one
    of them, else the whole app (``fragments`` empty)."""

    full: bool
    fragments: frozenset[str]
    round: int
    chain: frozenset[str]


class BindingTracker:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionEntry] = {}
        self._index: dict[str, set[str]] = {}  # key -> ids of sessions bound to it
        self._announced: dict[str, Announcement] = {}
        self._lock = threading.Lock()  # structure changes only; never held while calling out
        self._loop_reported: dict[frozenset[str], float] = {}
        self.reruns_requested = 0
        self.loops_stopped = 0

    # -- sessions and runs (script thread) -------------------------------------

    def entry(self, sid: str) -> SessionEntry | None:
        return self._sessions.get(sid)

    def ensure_entry(self, sid: str, handle: Any) -> SessionEntry:
        entry = self._sessions.get(sid)
        if entry is None:
            with self._lock:
                entry = self._sessions.setdefault(sid, SessionEntry(sid, handle))
        return entry

    def run_started(self, entry: SessionEntry, fragment_ids: Iterable[str] | None) -> RunRecord:
        entry.runs_started += 1
        run = RunRecord(
            entry,
            entry.runs_started,
            frozenset(fragment_ids) if fragment_ids else None,
            entry.pending_round,
            entry.pending_chain,
        )
        entry.pending_round, entry.pending_chain = 0, frozenset()
        entry.run = run
        return run

    def bind(self, run: RunRecord, scope: Scope, key: str, version: int) -> None:
        """Record a read. The hot path of every read: dict operations only."""
        per = run.reads.get(key)
        if per is None:
            run.reads[key] = {scope: version}
            sids = self._index.get(key)
            if sids is None:
                with self._lock:
                    sids = self._index.setdefault(key, set())
            sids.add(run.entry.sid)
        else:
            seen = per.get(scope)
            if seen is None or version < seen:
                per[scope] = version

    def run_finished(self, run: RunRecord, completed: bool) -> None:
        """Make ``run``'s reads the session's bindings. A run that completed
        replaces what it re-executed (all scopes, or its fragments); a run cut
        short, or not the session's latest, only adds to them."""
        entry = run.entry
        replace = completed and run.number == entry.runs_started
        with self._lock:
            if not replace:
                bound = {k: dict(per) for k, per in entry.bound.items()}
            elif run.fragment_ids is None:
                bound = {}
            else:
                bound = {}
                for key, per in entry.bound.items():
                    kept = {s: v for s, v in per.items() if s not in run.fragment_ids}
                    if kept:
                        bound[key] = kept
            for key, per in run.reads.items():
                into = bound.setdefault(key, {})
                for scope, version in per.items():
                    seen = into.get(scope)
                    if seen is None or version < seen:
                        into[scope] = version
            for key in entry.bound.keys() - bound.keys():
                sids = self._index.get(key)
                if sids is not None:
                    sids.discard(entry.sid)
            entry.bound = bound
            if entry.run is run:
                entry.run = None

    def drop(self, sid: str) -> None:
        """Forget a session that is gone."""
        with self._lock:
            entry = self._sessions.pop(sid, None)
            if entry is None:
                return
            for key in (*entry.bound, *(entry.run.reads if entry.run else ())):
                sids = self._index.get(key)
                if sids is not None:
                    sids.discard(sid)

    # -- changes (any thread) -----------------------------------------------------

    def announce(
        self, changes: Iterable[_Advance], round: int, chain: frozenset[str], writer: SessionEntry | None
    ) -> list[SessionEntry]:
        """Record that keys advanced; return the sessions that need a flush
        scheduled (each at most once until its flush runs: coalescing). The
        writer's own session is left out: the end of its run flushes it."""
        to_flush: list[SessionEntry] = []
        announced = self._announced
        for change in changes:
            key, version = change.key, change.version
            with self._lock:
                current = announced.get(key)
                if current is None or current.version < version:
                    announced[key] = _new(Announcement, (version, round, chain, key))
                bound = self._index.get(key)
                if not bound:
                    continue
                sids = tuple(bound)
            for sid in sids:
                entry = self._sessions.get(sid)
                if entry is None or entry.flush_scheduled or entry is writer:
                    continue
                if self._seen(entry, key) < version:
                    entry.flush_scheduled = True
                    to_flush.append(entry)
        return to_flush

    @staticmethod
    def _seen(entry: SessionEntry, key: str) -> float:
        """The oldest version of ``key`` this session shows or is showing."""
        seen: float = float("inf")
        per = entry.bound.get(key)
        if per:
            seen = min(per.values())
        run = entry.run
        if run is not None:
            per = run.reads.get(key)
            if per:
                seen = min(seen, min(per.values()))
        return seen

    def stale_plan(self, entry: SessionEntry) -> RerunPlan | None:
        """What ``entry`` must rerun now that its run is over, or None."""
        stale: set[Scope] = set()
        rounds: list[int] = []
        chain: frozenset[str] = frozenset()
        announced = self._announced
        for key, per in entry.bound.items():
            ann = announced.get(key)
            if ann is None:
                continue
            for scope, seen in per.items():
                if seen < ann.version:
                    stale.add(scope)
                    rounds.append(ann.round)
                    if len(chain) < _CHAIN_KEYS_KEPT:
                        chain |= ann.chain | {ann.key}
        if not stale:
            return None
        fragments = frozenset(s for s in stale if s is not None)
        full = None in stale
        # The rerun is caused by the least derived change: a user action or a
        # background write always gets through, only pure rerun chains count up.
        return RerunPlan(full, frozenset() if full else fragments, min(rounds) + 1, chain)

    def admit(self, entry: SessionEntry, plan: RerunPlan) -> bool:
        """Whether to carry out ``plan``; False (and a warning) for a loop."""
        if plan.round <= MAX_ROUNDS:
            entry.pending_round, entry.pending_chain = plan.round, plan.chain
            self.reruns_requested += 1
            return True
        self.loops_stopped += 1
        now = time.monotonic()
        if now - self._loop_reported.get(plan.chain, -1e9) > 10.0:
            self._loop_reported[plan.chain] = now
            _LOG.warning(
                "server_state stopped a rerun loop: sessions kept rerunning each other through "
                "key(s) %s for %d rounds. A script that writes a value that differs on every run "
                "(a timestamp, a random number, a widget with key= that keeps its own value) "
                "causes this: write only when the value really changes, or from a widget callback.",
                ", ".join(repr(k) for k in sorted(plan.chain)),
                MAX_ROUNDS,
            )
        return False

    # -- introspection ---------------------------------------------------------------

    def bound_sessions(self, key: str) -> int:
        return len(self._index.get(key, ()))

    def session_count(self) -> int:
        return len(self._sessions)
