"""The rerun scheduler: follows runs (told by the adapter), and after each
commit reruns the sessions that showed a changed key, on their own event
loops, once their own run is over and has reached the browser.

Rules it carries out are in docs/reruns.md ("When sessions rerun"). Decisions on
*who* is stale live in the binding tracker; this module decides *when*, and
talks to Streamlit only through the adapter.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from . import _streamlit as adapter
from ._base import Change, Origin
from ._store import Store, _thread_writer
from ._tracker import BindingTracker, RerunPlan, RunRecord, SessionEntry

__all__ = ["RUN_WAIT_LIMIT", "PerSecond", "RerunScheduler", "suppressed"]


def _wait_limit_from_env() -> float:
    raw = os.environ.get("SERVER_STATE_RUN_WAIT_LIMIT", "")
    try:
        value = float(raw) if raw else 5.0
    except ValueError:
        value = 5.0
    return value if value > 0 else 5.0


# How long a pushed rerun waits for a session's own run to finish (and reach
# its browser) before it goes ahead anyway: a run that never ends must not hold
# updates back forever. Seconds; SERVER_STATE_RUN_WAIT_LIMIT overrides it
# (read once, at import: tests shorten it).
RUN_WAIT_LIMIT = _wait_limit_from_env()

# A run that set a widget's value through st.session_state (a callback that
# clears the text box it just sent) hands the browser that value with the
# run's elements, and the browser takes it only when it draws them. A rerun
# pushed the instant the session settles can land before that: its elements
# replace the first ones undrawn, and the box keeps the sent text. Such a
# rerun waits this long after the session settles (seconds), once per run,
# and only within RENDER_HOLD_WINDOW of the run's end (later, it was drawn).
RENDER_HOLD = 0.15
RENDER_HOLD_WINDOW = 1.0

# How often the sessions we follow are checked against Streamlit's list of
# live ones: a closed tab leaves the counters within about this long, and a
# tab that reconnects is brought up to date.
LIVENESS_PERIOD = 1.0

_NO_CHAIN: frozenset[str] = frozenset()

# Depth of ``with no_rerun:`` blocks in this thread or task.
suppressed: ContextVar[int] = ContextVar("server_state_no_rerun", default=0)


class PerSecond:
    """Commits and pushed reruns per second over the last ``span`` seconds:
    a ring of per-second buckets, O(1) per count. Kept only once something
    asked (the inspector), so an app without one pays a None check."""

    __slots__ = ("_buckets", "_second", "span")

    def __init__(self, span: int = 120) -> None:
        self.span = span
        self._buckets = [[0, 0] for _ in range(span)]  # [commits, reruns] of second t at t % span
        self._second = int(time.time())

    def _slot(self) -> list[int]:
        now = int(time.time())
        if now != self._second:
            if not 0 < now - self._second < self.span:  # a long pause, or the clock went back
                for bucket in self._buckets:
                    bucket[0] = bucket[1] = 0
            else:
                for second in range(self._second + 1, now + 1):
                    bucket = self._buckets[second % self.span]
                    bucket[0] = bucket[1] = 0
            self._second = now
        return self._buckets[now % self.span]

    def commit(self) -> None:
        self._slot()[0] += 1

    def rerun(self) -> None:
        self._slot()[1] += 1

    def last(self, seconds: int) -> list[tuple[int, int, int]]:
        """``(second, commits, reruns)`` of the last ``seconds`` seconds,
        oldest first; the last is the second going on, still counting."""
        self._slot()
        end = self._second
        out = []
        for second in range(end - min(seconds, self.span) + 1, end + 1):
            commits, reruns = self._buckets[second % self.span]
            out.append((second, commits, reruns))
        return out


class RerunScheduler:
    """Follows runs (told by the adapter) and carries out reruns."""

    def __init__(self, tracker: BindingTracker, store: Store) -> None:
        self.tracker = tracker
        self.store = store
        self.installed = False
        self._install_lock = threading.Lock()
        self._gone: collections.deque[str] = collections.deque()
        self._liveness_loop: Any = None  # the event loop the liveness check runs on
        self.rates: PerSecond | None = None  # counted once the inspector asked (count_rates)

    def count_rates(self) -> PerSecond:
        """Start counting commits and pushed reruns per second (idempotent)."""
        if self.rates is None:
            self.rates = PerSecond()
        return self.rates

    # -- runs (script thread) ------------------------------------------------------

    def ensure_installed(self) -> None:
        if not self.installed:
            with self._install_lock:
                if not self.installed:
                    adapter.install(self)
                    self.installed = True

    def _entry_for(self, sid: str) -> SessionEntry | None:
        entry = self.tracker.entry(sid)
        if entry is not None:
            return entry
        session = adapter.active_session(sid)
        if session is None:
            return None  # not a live browser session (AppTest, a closing tab)
        entry = self.tracker.unpark(sid)  # reconnected, and running before the check saw it
        if entry is not None:
            return entry
        loop = adapter.session_loop(session)
        entry = self.tracker.ensure_entry(sid, loop)
        adapter.watch_session_lifetime(session, lambda: self._gone.append(sid))
        adapter.call_soon(loop, lambda: self._track_settling(sid))
        adapter.call_soon(loop, lambda: self._start_liveness(loop))  # a no-op when it runs already
        return entry

    @staticmethod
    def _track_settling(sid: str) -> None:
        session = adapter.active_session(sid)
        if session is not None:
            adapter.settled_event(session)

    def run_started(self, sid: str, fragment_ids: Iterable[str] | None) -> None:
        entry = self._entry_for(sid)
        self.tracker.current_run.set(None if entry is None else self.tracker.run_started(entry, fragment_ids))

    def run_finished(self, completed: bool) -> None:
        run = self.tracker.current_run.get()
        if run is not None:
            self.tracker.current_run.set(None)
            self.tracker.run_finished(run, completed)

    def runner_stopped(self, sid: str) -> None:
        entry = self.tracker.entry(sid)
        if entry is not None:
            entry.ended_at = time.monotonic()
            # The flush waits for the session to settle (AppSession handles
            # the same SHUTDOWN after us, then delivers the run's messages).
            adapter.call_soon(entry.handle, lambda: self.flush(sid))

    # -- liveness (event loop) -------------------------------------------------------

    def _start_liveness(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._liveness_loop is None:
            self._liveness_loop = loop
            adapter.call_later(loop, LIVENESS_PERIOD, self._check_liveness)

    def _check_liveness(self) -> None:
        """Every LIVENESS_PERIOD on the event loop, while anything is tracked:
        park the sessions Streamlit no longer lists as active (a closed tab:
        Streamlit keeps its AppSession for a reconnect, but it is not live),
        bring back those that reconnected, forget those kept too long, and
        sweep what nobody needs. Never rerun a session here except one that
        came back stale."""
        tracker = self.tracker
        try:
            self._drain_gone()
            for sid in tracker.session_ids():
                if adapter.active_session(sid) is None:
                    tracker.park(sid)
            for sid in tracker.parked_ids():
                if adapter.active_session(sid) is not None and tracker.unpark(sid) is not None:
                    self.flush(sid)  # the browser asks for no run when it reconnects
            tracker.expire_parked(adapter.disconnected_session_ttl())
            tracker.maybe_sweep()
        finally:
            sizes = tracker.sizes()
            if sizes["sessions"] or sizes["parked"] or sizes["announced"]:
                adapter.call_later(self._liveness_loop, LIVENESS_PERIOD, self._check_liveness)
            else:
                self._liveness_loop = None  # the next session to appear starts it again

    def _drain_gone(self) -> None:
        while self._gone:
            self.tracker.drop(self._gone.popleft())

    def run_for_current_thread(self) -> RunRecord | None:
        """The run to bind reads to when the ContextVar has none: a thread
        attached to a session, or a runner created before we were installed."""
        sid = adapter.current_session_id()
        if sid is None:
            return None  # a background thread: reads simply read
        self.ensure_installed()
        entry = self.tracker.entry(sid)
        if entry is not None and entry.run is not None:
            return entry.run
        if adapter.hook_current_runner(sid):
            self.run_started(sid, adapter.current_fragment_ids())
            return self.tracker.current_run.get()
        return None

    # -- changes -> reruns ---------------------------------------------------------

    def origin(self) -> Origin:
        """What a commit made in this thread carries to other replicas."""
        run = self.tracker.current_run.get()
        if run is None:
            return Origin(0, _NO_CHAIN, suppressed.get() > 0)
        return Origin(run.round, run.chain, suppressed.get() > 0)

    def writer(self) -> str:
        """Who commits in this thread, for the history: the session whose run
        (or callback) it is, else the thread."""
        run = self.tracker.current_run.get()
        if run is not None:
            return run.entry.writer
        sid = adapter.current_session_id()
        if sid is None:
            return _thread_writer()  # one label per thread, shared by its records
        entry = self.tracker.entry(sid)  # an attached thread: its session's label
        return entry.writer if entry is not None else "session " + sid

    def announce(self, changes: tuple[Change, ...], origin: Origin | None = None) -> None:
        """After a commit, with no lock held: tell watchers, then rerun the
        sessions that showed the keys (unless inside ``no_rerun``). Commits
        made in another replica come with their ``origin``; those made here
        take it from the writer's context."""
        if self.store.has_watchers:
            self.store.notify(changes, origin)
        if self.rates is not None:
            self.rates.commit()
        if origin is not None:
            if origin.no_rerun:
                return
            if self._gone:
                self._drain_gone()
            entries = self.tracker.announce(changes, origin.round, origin.chain, None)
        else:
            if suppressed.get():
                return
            if self._gone:
                self._drain_gone()
            run = self.tracker.current_run.get()
            if run is None:
                entries = self.tracker.announce(changes, 0, _NO_CHAIN, None)
            else:
                entries = self.tracker.announce(changes, run.round, run.chain, run.entry)
        if not entries:
            return
        by_loop: dict[Any, list[str]] = {}
        for entry in entries:
            by_loop.setdefault(entry.handle, []).append(entry.sid)
        for loop, sids in by_loop.items():
            adapter.call_soon(loop, lambda sids=sids: self.flush_many(sids))  # type: ignore[misc]

    def flush_many(self, sids: list[str]) -> None:
        for sid in sids:
            self.flush(sid)

    def flush(self, sid: str, *, waited: bool = False) -> None:
        """On the session's event loop: rerun the session if it is stale and
        settled, that is, no run is going and its browser has every message
        of the last one (a rerun started before they are sent makes Streamlit
        drop them from its queue, and the browser misses widget resets)."""
        entry = self.tracker.entry(sid)
        if entry is None:
            return
        entry.flush_scheduled = False
        session = adapter.active_session(sid)
        if session is None:
            self.tracker.park(sid)  # disconnected: brought back if it reconnects
            return
        plan = self.tracker.stale_plan(entry)
        if plan is None:
            return
        if not waited:
            settled = adapter.settled_event(session)
            if not settled.is_set():
                if entry.waiter is None:
                    entry.waiter = asyncio.ensure_future(
                        self._flush_when_settled(sid, settled), loop=entry.handle
                    )
                return
            if self._hold_for_render(entry, session):
                return
        elif entry.run is not None:
            # Past the wait limit with a run still going: interrupt it only
            # for what it has already shown older than announced, never for
            # a key it has yet to read (it will show the new value itself).
            # Its end flushes the session again.
            plan = self.tracker.stale_plan(entry, running=entry.run)
            if plan is None:
                return
        elif adapter.run_pending(session):
            return  # a run about to start reads everything afresh; its end flushes again
        if self.tracker.admit(entry, plan):
            if self.rates is not None:
                self.rates.rerun()
            self._rerun(session, plan)

    def _hold_for_render(self, entry: SessionEntry, session: Any) -> bool:
        """Whether to put off a settled session's rerun by RENDER_HOLD
        because its last run, which ended moments ago, set a widget's value
        its browser may not have drawn yet. The hold's end flushes again."""
        if entry.render_hold:
            return True
        if entry.held_run == entry.runs_started or time.monotonic() - entry.ended_at > RENDER_HOLD_WINDOW:
            return False
        if not adapter.widget_values_set(session):
            return False
        entry.held_run = entry.runs_started
        entry.render_hold = True
        sid = entry.sid

        def release() -> None:
            entry.render_hold = False
            self.flush(sid)

        adapter.call_later(entry.handle, RENDER_HOLD, release)
        return True

    async def _flush_when_settled(self, sid: str, settled: asyncio.Event) -> None:
        """Wait (bounded: a run that never ends must not hold updates back
        forever) until the session settles, then flush it again."""
        waited = False
        try:
            async with asyncio.timeout(RUN_WAIT_LIMIT):
                while not settled.is_set():
                    await settled.wait()
        except TimeoutError:
            waited = True
        entry = self.tracker.entry(sid)
        if entry is not None:
            entry.waiter = None
            self.flush(sid, waited=waited)

    @staticmethod
    def _rerun(session: Any, plan: RerunPlan) -> None:
        if plan.full:
            adapter.request_rerun(session, None)
            return
        for fragment_id in sorted(plan.fragments):
            if not adapter.request_rerun(session, fragment_id):
                adapter.request_rerun(session, None)  # the fragment is gone: rerun all
                return
