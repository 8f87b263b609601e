"""The binding tracker: which session showed which key at which version, and
who must rerun when a key advances.

A session is bound to what its latest complete run read, per scope (``None``
for the whole app, else the fragment id the read happened in), at the lowest
version that run read. When a key advances it is *announced*; a session is
stale when one of its bound keys was announced at a version newer than it
read. Stale sessions are rerun only once their own run has finished (the
caller decides when that is), only the stale fragment when every stale read
was inside one.

Memory follows what is live: a key's slot in the session index goes when no
session is bound to it, and its announcement when, besides, it is older than
one sweep interval (a run may have read the key just before the write and
bind just after the announcement: the announcement must outlive that gap).
A key with no announcement has not been announced since any binding to it was
made, so nobody is stale for it. Sessions that disconnect are *parked* (kept
out of the counts and the index, their bindings kept) until they reconnect or
Streamlit lets them go.

No Streamlit import here: sessions are ids, their event loop an opaque handle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = ["EVERY_KEY", "BindingTracker", "RerunPlan", "RunRecord", "SessionEntry"]

_LOG = logging.getLogger("server_state")


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
# Reruns of one session for one change (a key at one announced version): the
# first, and one more in case the first was cut short. A session still stale
# after that cannot be brought up to date by rerunning it (its runs do not
# read the key afresh): rerunning it again would loop without any new write.
MAX_RERUNS_PER_CHANGE = 2
# Seconds between sweeps at least; an announcement lives at least this long.
SWEEP_INTERVAL = 1.0
_SWEEP_MIN_SIZE = 1024
_CHAIN_KEYS_KEPT = 16
_REPORT_EVERY = 10.0  # seconds between two warnings about the same keys
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)
# A binding to this name is a binding to every key (the inspector): it is
# announced, at round 0, with every commit while some session is bound to it.
EVERY_KEY = "\x00server_state:every key"
_LOOP_REPORTS_KEPT = 20


class Announcement(NamedTuple):
    version: int
    round: int
    chain: frozenset[str]  # keys of the rerun chain that led here (not ``key`` itself)
    key: str
    generation: int  # the tracker's sweep generation when announced


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
    ended_at: float = 0.0  # time.monotonic() when its last run chain ended
    held_run: int = 0  # the run (runs_started) whose rerun was last held for its browser to draw
    render_hold: bool = False  # a held rerun is due (see RerunScheduler._hold_for_render)
    # key -> (announced version the session was last rerun for, how many times)
    rerun_for: dict[str, tuple[int, int]] = field(default_factory=dict)
    # who commits from this session's runs, for the history: one string shared by its records
    writer: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.writer = "session " + self.sid


@dataclass(slots=True, eq=False)
class RunRecord:
    entry: SessionEntry
    number: int
    fragment_ids: frozenset[str] | None  # None: a full run
    round: int
    chain: frozenset[str]
    reads: dict[str, dict[Scope, int]] = field(default_factory=dict)

    def covers(self, scope: Scope) -> bool:
        """Whether this run executes the code of ``scope`` (a full run runs
        every fragment too)."""
        return self.fragment_ids is None or scope in self.fragment_ids


@dataclass(frozen=True, slots=True)
class RerunPlan:
    """What to rerun: ``fragments`` alone when every stale read was inside one
    of them, else the whole app (``fragments`` empty). ``causes`` are the
    stale keys with the announced versions that make them stale."""

    full: bool
    fragments: frozenset[str]
    round: int
    chain: frozenset[str]
    causes: tuple[tuple[str, int], ...] = ()


class BindingTracker:
    def __init__(self) -> None:
        # The run in progress on this thread (and on parallel fragment
        # workers, which copy the context), for this tracker only: a second
        # ServerState in the process follows its own runs.
        self.current_run: ContextVar[RunRecord | None] = ContextVar("server_state_run", default=None)
        self._sessions: dict[str, SessionEntry] = {}
        self._parked: dict[str, tuple[SessionEntry, float]] = {}  # disconnected: entry, since
        self._index: dict[str, set[str]] = {}  # key -> ids of live sessions bound to it
        self._announced: dict[str, Announcement] = {}
        self._lock = threading.Lock()  # structure changes only; never held while calling out
        self._loop_reported: dict[frozenset[str], float] = {}
        self._generation = 0
        self._swept_at = time.monotonic()
        self._sweep_at = _SWEEP_MIN_SIZE  # sweep early when announcements pass this many
        self._dirty = 2  # sweeps still worth doing (something became removable)
        self.reruns_requested = 0
        self.loops_stopped = 0
        # The last loop warnings logged: (time.time(), keys, message).
        self.loop_reports: deque[tuple[float, tuple[str, ...], str]] = deque(maxlen=_LOOP_REPORTS_KEPT)

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
            index = self._index
            sids = index.get(key)
            if sids is not None:
                sids.add(run.entry.sid)
                if index.get(key) is sids:  # not removed meanwhile (see _unindex)
                    return
            with self._lock:
                index.setdefault(key, set()).add(run.entry.sid)
        else:
            seen = per.get(scope)
            if seen is None or version < seen:
                per[scope] = version

    def _unindex(self, key: str, sid: str) -> None:
        """Take ``sid`` out of ``key``'s slot, the slot too once empty. Under
        the lock. ``bind`` adds without it, then checks its set is still the
        slot: removing, then putting back a set that a bind filled meanwhile,
        leaves no bind lost in a set that is no longer indexed."""
        index = self._index
        sids = index.get(key)
        if sids is None:
            return
        sids.discard(sid)
        if not sids:
            del index[key]
            if sids:
                index[key] = sids
            else:
                self._dirty = 2

    def run_finished(self, run: RunRecord, completed: bool) -> None:
        """Make ``run``'s reads the session's bindings. A run that completed
        (``st.stop()`` included) replaces what it re-executed (all scopes, or
        its fragments); a run cut short, or not the session's latest, only
        adds to them."""
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
            sid = entry.sid
            if self._sessions.get(sid) is entry:
                newer = entry.run if entry.run is not run else None
                for key in entry.bound.keys() - bound.keys():
                    if newer is None or key not in newer.reads:  # a newer run going may have read it
                        self._unindex(key, sid)
            else:  # parked or dropped: reads of this run indexed it anyway
                for key in run.reads:
                    self._unindex(key, sid)
            entry.bound = bound
            if entry.run is run:
                entry.run = None

    def _forget(self, entry: SessionEntry) -> None:
        """Take a session out of the index. Under the lock."""
        run = entry.run
        for key in (*entry.bound, *(run.reads if run is not None else ())):
            self._unindex(key, entry.sid)

    def drop(self, sid: str) -> None:
        """Forget a session that is gone for good."""
        with self._lock:
            entry = self._sessions.pop(sid, None)
            if entry is None:
                parked = self._parked.pop(sid, None)
                if parked is not None:
                    self._dirty = 2
                return
            self._forget(entry)

    def park(self, sid: str, now: float | None = None) -> None:
        """A session whose browser disconnected: out of the counts and the
        index; its bindings kept in case it reconnects."""
        with self._lock:
            entry = self._sessions.pop(sid, None)
            if entry is None:
                return
            self._forget(entry)
            entry.flush_scheduled = False
            self._parked[sid] = (entry, time.monotonic() if now is None else now)

    def unpark(self, sid: str) -> SessionEntry | None:
        """A parked session that is live again; None if ``sid`` is not parked."""
        with self._lock:
            parked = self._parked.pop(sid, None)
            if parked is None:
                return None
            entry = parked[0]
            self._sessions[sid] = entry
            run = entry.run
            for key in (*entry.bound, *(run.reads if run is not None else ())):
                self._index.setdefault(key, set()).add(sid)
            return entry

    def expire_parked(self, older_than: float, now: float | None = None) -> None:
        """Drop sessions parked for longer than ``older_than`` seconds."""
        if not self._parked:
            return
        limit = (time.monotonic() if now is None else now) - older_than
        with self._lock:
            for sid in [s for s, (_, since) in self._parked.items() if since < limit]:
                del self._parked[sid]
                self._dirty = 2

    def session_ids(self) -> list[str]:
        return list(self._sessions)

    def parked_ids(self) -> list[str]:
        return list(self._parked)

    # -- changes (any thread) -----------------------------------------------------

    def announce(
        self, changes: Sequence[_Advance], round: int, chain: frozenset[str], writer: SessionEntry | None
    ) -> list[SessionEntry]:
        """Record that keys advanced; return the sessions that need a flush
        scheduled (each at most once until its flush runs: coalescing). The
        writer's own session is left out: the end of its run flushes it."""
        to_flush: list[SessionEntry] = []
        announced = self._announced
        generation = self._generation
        for change in changes:
            key, version = change.key, change.version
            with self._lock:
                current = announced.get(key)
                if current is None or current.version < version:
                    announced[key] = _new(Announcement, (version, round, chain, key, generation))
                bound = self._index.get(key)
                if not bound:
                    self._dirty = 2  # an announcement nobody is bound to: a sweep may drop it
                    continue
                sids = tuple(bound)
            self._collect(sids, key, version, writer, to_flush)
        if EVERY_KEY in self._index:
            self._announce_every(changes, writer, to_flush)
        if len(announced) > self._sweep_at:
            self.maybe_sweep()
        return to_flush

    def _announce_every(
        self, changes: Sequence[_Advance], writer: SessionEntry | None, to_flush: list[SessionEntry]
    ) -> None:
        """Announce ``EVERY_KEY`` at the commit's version. Round 0 and no
        chain: a session that only watches (the inspector) is no link of a
        rerun loop, and is never refused as one."""
        version = max((change.version for change in changes), default=0)
        if not version:
            return
        with self._lock:
            current = self._announced.get(EVERY_KEY)
            if current is None or current.version < version:
                self._announced[EVERY_KEY] = _new(
                    Announcement, (version, 0, frozenset(), EVERY_KEY, self._generation)
                )
            sids = tuple(self._index.get(EVERY_KEY, ()))
        self._collect(sids, EVERY_KEY, version, writer, to_flush)

    def _collect(
        self,
        sids: tuple[str, ...],
        key: str,
        version: int,
        writer: SessionEntry | None,
        to_flush: list[SessionEntry],
    ) -> None:
        """Add to ``to_flush`` the sessions of ``sids`` showing ``key`` older
        than ``version`` with no flush scheduled yet (the writer left out)."""
        for sid in sids:
            entry = self._sessions.get(sid)
            if entry is None or entry.flush_scheduled or entry is writer:
                continue
            if self._seen(entry, key) < version:
                entry.flush_scheduled = True
                to_flush.append(entry)

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

    def stale_plan(self, entry: SessionEntry, running: RunRecord | None = None) -> RerunPlan | None:
        """What ``entry`` must rerun, or None.

        Without ``running``: its run is over; stale is what its bindings show
        older than announced. With ``running`` (a run still going, that the
        caller would interrupt): only what that run will not bring up to date
        counts, that is what it already read at an older version, and what it
        does not execute at all (a fragment run leaves the rest as it was). A
        run that has not read a key yet reads it afresh: never interrupted for it.
        """
        stale: set[Scope] = set()
        rounds: list[int] = []
        chain: frozenset[str] = frozenset()
        causes: dict[str, int] = {}
        announced = self._announced

        def note(ann: Announcement, scope: Scope) -> None:
            nonlocal chain
            stale.add(scope)
            rounds.append(ann.round)
            causes[ann.key] = ann.version
            if len(chain) < _CHAIN_KEYS_KEPT:
                chain |= ann.chain | {ann.key}

        for key, per in entry.bound.items():
            ann = announced.get(key)
            if ann is None:
                continue
            for scope, seen in per.items():
                if seen >= ann.version:
                    continue
                if running is not None and running.covers(scope):
                    fresh = running.reads.get(key)
                    if fresh is None or fresh.get(scope, ann.version) >= ann.version:
                        continue  # the run going shows (or drops) it afresh
                note(ann, scope)
        if running is not None:
            for key, per in running.reads.items():
                ann = announced.get(key)
                if ann is None:
                    continue
                for scope, seen in per.items():
                    if seen < ann.version:
                        note(ann, scope)
        if not stale:
            return None
        fragments = frozenset(s for s in stale if s is not None)
        full = None in stale
        # The rerun is caused by the least derived change: a user action or a
        # background write always gets through, only pure rerun chains count up.
        return RerunPlan(
            full, frozenset() if full else fragments, min(rounds) + 1, chain, tuple(sorted(causes.items()))
        )

    def admit(self, entry: SessionEntry, plan: RerunPlan) -> bool:
        """Whether to carry out ``plan``; False (and a warning) for a loop:
        sessions rerunning each other for more than MAX_ROUNDS rounds, or one
        session rerun again for changes it was already rerun for
        MAX_RERUNS_PER_CHANGE times."""
        rerun_for: dict[str, tuple[int, int]] = {}
        repeated = bool(plan.causes)
        for key, version in plan.causes:
            last, times = entry.rerun_for.get(key, (-1, 0))
            times = times + 1 if last == version else 1
            rerun_for[key] = (version, times)
            if times <= MAX_RERUNS_PER_CHANGE:
                repeated = False
        entry.rerun_for = rerun_for
        if repeated:
            self.loops_stopped += 1
            keys = frozenset(key for key, _ in plan.causes)
            if self._should_report(keys):
                self._report(
                    keys,
                    "server_state stopped rerunning a session for key(s) %s: it was rerun %d times "
                    "for the same change and its runs still showed an older value. A run that does "
                    "not read the key afresh causes this (a snapshot kept in st.session_state and "
                    "read again, for instance): read server_state itself on every run.",
                    ", ".join(repr(k) for k in sorted(keys)),
                    MAX_RERUNS_PER_CHANGE,
                )
            return False
        if plan.round <= MAX_ROUNDS:
            entry.pending_round, entry.pending_chain = plan.round, plan.chain
            self.reruns_requested += 1
            return True
        self.loops_stopped += 1
        if self._should_report(plan.chain):
            self._report(
                plan.chain,
                "server_state stopped a rerun loop: sessions kept rerunning each other through "
                "key(s) %s for %d rounds. A script that writes a value that differs on every run "
                "(a timestamp, a random number, a widget with key= that keeps its own value) "
                "causes this: write only when the value really changes, or from a widget callback.",
                ", ".join(repr(k) for k in sorted(plan.chain)),
                MAX_ROUNDS,
            )
        return False

    def _report(self, keys: frozenset[str], message: str, *args: object) -> None:
        """Log a loop warning, and keep it for the inspector."""
        _LOG.warning(message, *args)
        self.loop_reports.append((time.time(), tuple(sorted(keys)), message % args))

    def _should_report(self, keys: frozenset[str]) -> bool:
        now = time.monotonic()
        reported = self._loop_reported
        if now - reported.get(keys, -1e9) <= _REPORT_EVERY:
            return False
        if len(reported) > 64:  # keep only the recent ones
            for old in [k for k, at in reported.items() if now - at > _REPORT_EVERY]:
                del reported[old]
        reported[keys] = now
        return True

    # -- memory ----------------------------------------------------------------------

    def maybe_sweep(self, now: float | None = None) -> bool:
        """Sweep if something may have become removable and the last sweep is
        at least SWEEP_INTERVAL old. Returns whether it swept."""
        now = time.monotonic() if now is None else now
        if now - self._swept_at < SWEEP_INTERVAL:
            self._sweep_at = max(self._sweep_at, len(self._announced) + _SWEEP_MIN_SIZE)  # look again later
            return False
        if not self._dirty and len(self._announced) <= self._sweep_at // 2:
            return False
        self.sweep(now)
        return True

    def sweep(self, now: float | None = None) -> None:
        """Drop the announcements nobody needs: of keys no live or parked
        session is bound to, made before the previous sweep (so that a run
        that read such a key just before it advanced, and had not yet bound
        it, has had a whole interval to do so)."""
        with self._lock:
            self._generation += 1
            self._swept_at = time.monotonic() if now is None else now
            self._dirty = max(0, self._dirty - 1)
            old = self._generation - 2
            index = self._index
            parked_keys: set[str] = set()
            for entry, _ in self._parked.values():
                parked_keys.update(entry.bound)
            announced = self._announced
            gone = [
                key
                for key, ann in announced.items()
                if ann.generation <= old and not index.get(key) and key not in parked_keys
            ]
            for key in gone:
                del announced[key]
            for key in [key for key, sids in index.items() if not sids]:
                sids = index.pop(key)
                if sids:  # filled meanwhile by a bind (see _unindex)
                    index[key] = sids
            if any(ann.generation > old for ann in announced.values()):
                self._dirty = max(self._dirty, 1)  # those become removable at the next sweep
            self._sweep_at = max(_SWEEP_MIN_SIZE, 2 * len(announced))

    # -- introspection ---------------------------------------------------------------

    def bound_sessions(self, key: str) -> int:
        return len(self._index.get(key, ()))

    def session_count(self) -> int:
        return len(self._sessions)

    def sizes(self) -> dict[str, int]:
        """How many entries the tracker holds, for diagnostics and tests."""
        return {
            "sessions": len(self._sessions),
            "parked": len(self._parked),
            "index": len(self._index),
            "announced": len(self._announced),
        }
