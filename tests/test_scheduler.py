"""The binding tracker and the adapter's reading of run ends, without a
server: memory under churn, the read/announce race, the repeat detector,
staleness judged against a run still going, parked sessions.

The behaviour a user sees is tested on real servers (tests/test_sessions.py,
tests/test_reruns.py); these pin down the rules that make it.
"""

from __future__ import annotations

import contextvars
import gc
import logging
from collections.abc import Callable
from typing import Any

import pytest
from streamlit.runtime.scriptrunner.script_runner import ScriptRunnerEvent

from server_state import ServerState, _tracker
from server_state import _streamlit as adapter
from server_state._streamlit import ScriptRequestType  # its module moved in 1.38: the adapter finds it
from server_state._tracker import BindingTracker, RunRecord, SessionEntry


class _Change:
    def __init__(self, key: str, version: int) -> None:
        self.key = key
        self.version = version


class _FakeLoop:
    """A session's event loop that drops what is scheduled on it."""

    def __init__(self) -> None:
        self.scheduled = 0

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
        self.scheduled += 1


def _full_run(tracker: BindingTracker, entry: SessionEntry, reads: dict[str, int]) -> RunRecord:
    run = tracker.run_started(entry, None)
    for key, version in reads.items():
        tracker.bind(run, None, key, version)
    return run


# -- memory ---------------------------------------------------------------------------


def test_churn_of_distinct_keys_leaves_the_tracker_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """100k per-user keys set and deleted while a session shows each one:
    the index and the announcements follow what is live, not what was."""
    monkeypatch.setattr(_tracker, "SWEEP_INTERVAL", 0.0)  # no clock in the way: sweep whenever due
    state = ServerState()
    tracker = state._tracker
    entry = tracker.ensure_entry("reader", _FakeLoop())
    in_run = contextvars.Context()  # the session's script thread; writes come from elsewhere
    largest = 0
    for i in range(100_000):
        if i % 100 == 0:
            if entry.run is not None:
                tracker.run_finished(entry.run, True)
            in_run.run(tracker.current_run.set, tracker.run_started(entry, None))
        key = f"user-{i}"
        state[key] = i
        assert in_run.run(state.get, key) == i  # the session shows it: bound
        del state[key]
        sizes = tracker.sizes()
        largest = max(largest, sizes["index"], sizes["announced"])
    assert entry.run is not None
    tracker.run_finished(entry.run, True)
    # During the churn: bounded by the sweep threshold, not by the keys seen.
    assert largest <= 4 * _tracker._SWEEP_MIN_SIZE, largest
    tracker.sweep()
    tracker.sweep()
    sizes = tracker.sizes()
    # The last run showed 100 keys (now deleted): that is what is live.
    assert sizes["index"] == 100 and sizes["announced"] == 100, sizes
    assert len(entry.bound) == 100
    # The session moves on to a page that reads nothing: nothing is left.
    tracker.run_finished(_full_run(tracker, entry, {}), True)
    tracker.sweep()
    tracker.sweep()
    assert tracker.sizes() == {"sessions": 1, "parked": 0, "index": 0, "announced": 0}


def test_announcement_outlives_a_read_whose_bind_comes_after_it() -> None:
    """A run reads v1; a writer commits v2 and announces before the run's bind
    reaches the index (nobody is bound yet); a sweep passes. The run must
    still be found stale at its end."""
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    run = tracker.run_started(entry, None)
    tracker.announce([_Change("k", 2)], 0, frozenset(), None)  # nobody bound to "k" yet
    tracker.sweep()  # the announcement is younger than one interval: kept
    tracker.bind(run, None, "k", 1)  # the read of v1 binds only now
    tracker.run_finished(run, True)
    plan = tracker.stale_plan(entry)
    assert plan is not None and plan.full and plan.causes == (("k", 2),)


def test_bind_racing_the_removal_of_an_empty_key_slot_is_not_lost() -> None:
    """``bind`` adds itself to a key's slot without the lock; another session
    dropping the key may remove that slot (empty) at the same moment."""
    tracker = BindingTracker()
    a = tracker.ensure_entry("a", None)
    b = tracker.ensure_entry("b", None)
    tracker.run_finished(_full_run(tracker, a, {"k": 1}), True)

    class RacingSlot(set[str]):
        def add(self, sid: str) -> None:
            # Between b's lookup of the slot and its add: a drops "k".
            tracker.run_finished(_full_run(tracker, a, {}), True)
            super().add(sid)

    tracker._index["k"] = RacingSlot(tracker._index["k"])
    run_b = _full_run(tracker, b, {"k": 1})
    assert tracker._index["k"] == {"b"} and type(tracker._index["k"]) is set  # indexed anew
    tracker.run_finished(run_b, True)
    assert tracker.bound_sessions("k") == 1


def test_removing_a_slot_that_a_bind_filled_meanwhile_puts_it_back() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    tracker.run_finished(_full_run(tracker, entry, {"k": 1}), True)

    class FilledAfterTheCheck(set[str]):
        checked = False

        def __bool__(self) -> bool:
            empty = len(self) == 0
            if empty and not self.checked:
                self.checked = True
                self.add("late")  # a lock-free bind, just after _unindex found the slot empty
            return not empty

    slot = FilledAfterTheCheck(tracker._index["k"])
    tracker._index["k"] = slot
    with tracker._lock:
        tracker._unindex("k", "s")
    assert tracker._index.get("k") is slot and slot == {"late"}


# -- rerunning for a change already rerun for -------------------------------------------


def test_session_rerun_twice_for_one_change_is_not_rerun_a_third_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    tracker.run_finished(_full_run(tracker, entry, {"k": 1}), True)
    tracker.announce([_Change("k", 2)], 0, frozenset(), None)
    admitted = []
    for _ in range(4):
        plan = tracker.stale_plan(entry)
        assert plan is not None
        admitted.append(tracker.admit(entry, plan))
        # The rerun reads the same old instant again (a kept snapshot).
        tracker.run_finished(_full_run(tracker, entry, {"k": 1}), True)
    assert admitted == [True, True, False, False]
    assert tracker.loops_stopped == 2
    assert "stopped rerunning a session for key(s) 'k'" in caplog.text
    # A new change is a new cause.
    tracker.announce([_Change("k", 3)], 0, frozenset(), None)
    plan = tracker.stale_plan(entry)
    assert plan is not None and tracker.admit(entry, plan)


def test_rerun_that_brings_the_session_up_to_date_never_counts_as_a_repeat() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    tracker.run_finished(_full_run(tracker, entry, {"k": 1}), True)
    for version in range(2, 40):
        tracker.announce([_Change("k", version)], 0, frozenset(), None)
        plan = tracker.stale_plan(entry)
        assert plan is not None and tracker.admit(entry, plan)
        tracker.run_finished(_full_run(tracker, entry, {"k": version}), True)
        assert tracker.stale_plan(entry) is None
    assert tracker.loops_stopped == 0


# -- a run still going, past the wait limit ---------------------------------------------


def test_run_going_is_interrupted_only_for_what_it_already_showed_old() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    tracker.run_finished(_full_run(tracker, entry, {"early": 1, "late": 1}), True)
    running = _full_run(tracker, entry, {"early": 1})  # has read "early", not yet "late"
    tracker.announce([_Change("late", 2)], 0, frozenset(), None)
    assert tracker.stale_plan(entry) is not None  # by the last complete run: stale
    assert tracker.stale_plan(entry, running=running) is None  # it will read "late" afresh
    tracker.announce([_Change("early", 3)], 0, frozenset(), None)
    plan = tracker.stale_plan(entry, running=running)
    assert plan is not None and plan.causes == (("early", 3),)


def test_fragment_run_going_does_not_bring_the_body_up_to_date() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    run = tracker.run_started(entry, None)
    tracker.bind(run, None, "body", 1)
    tracker.bind(run, "frag", "inner", 1)
    tracker.run_finished(run, True)
    fragment_run = tracker.run_started(entry, ["frag"])
    tracker.announce([_Change("body", 2), _Change("inner", 2)], 0, frozenset(), None)
    plan = tracker.stale_plan(entry, running=fragment_run)
    assert plan is not None and plan.full and plan.causes == (("body", 2),)


# -- sessions that disconnect ---------------------------------------------------------------


def test_parked_session_leaves_the_counts_and_comes_back_stale() -> None:
    tracker = BindingTracker()
    live = tracker.ensure_entry("live", None)
    away = tracker.ensure_entry("away", None)
    for entry in (live, away):
        tracker.run_finished(_full_run(tracker, entry, {"k": 1}), True)
    assert (tracker.session_count(), tracker.bound_sessions("k")) == (2, 2)
    tracker.park("away")
    assert (tracker.session_count(), tracker.bound_sessions("k")) == (1, 1)
    assert tracker.announce([_Change("k", 2)], 0, frozenset(), None) == [live]
    tracker.sweep()
    tracker.sweep()
    assert "k" in tracker._announced  # the parked session still needs it
    assert tracker.unpark("away") is away
    assert (tracker.session_count(), tracker.bound_sessions("k")) == (2, 2)
    plan = tracker.stale_plan(away)
    assert plan is not None and plan.causes == (("k", 2),)


def test_parked_sessions_are_forgotten_after_the_reconnect_window() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    tracker.run_finished(_full_run(tracker, entry, {"k": 1}), True)
    tracker.park("s", now=100.0)
    tracker.expire_parked(120.0, now=200.0)
    assert tracker.parked_ids() == ["s"]
    tracker.expire_parked(120.0, now=221.0)
    assert tracker.parked_ids() == [] and tracker.unpark("s") is None


def test_run_ending_after_its_session_was_parked_leaves_no_index_slot() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", None)
    run = _full_run(tracker, entry, {"a": 1})
    tracker.park("s")
    tracker.bind(run, None, "b", 1)  # the run goes on reading after the disconnect
    tracker.run_finished(run, False)
    assert tracker.sizes()["index"] == 0
    assert set(entry.bound) == {"a", "b"}  # kept for a reconnect


# -- the adapter: how a run ended -----------------------------------------------------------


class _Requests:
    def __init__(self, state: ScriptRequestType) -> None:
        self._state = state


class _Runner:
    _session_id = "s"

    def __init__(self, state: ScriptRequestType, stopped_from_outside: bool) -> None:
        self._requests = _Requests(state)
        if stopped_from_outside:
            setattr(self, adapter._STOP_REQUESTED, True)


class _Events:
    def __init__(self) -> None:
        self.finished: list[bool] = []

    def run_started(self, sid: str, fragment_ids: Any) -> None: ...

    def run_finished(self, completed: bool) -> None:
        self.finished.append(completed)

    def runner_stopped(self, sid: str) -> None: ...


@pytest.mark.parametrize(
    ("state", "from_outside", "event", "completed"),
    [
        (ScriptRequestType.CONTINUE, False, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, True),
        # st.stop(): the script asked for the STOP itself: a complete run.
        (ScriptRequestType.STOP, False, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, True),
        (ScriptRequestType.STOP, False, ScriptRunnerEvent.FRAGMENT_STOPPED_WITH_SUCCESS, True),
        # A stop from outside (fastReruns, the user's Stop, a disconnect): cut short.
        (ScriptRequestType.STOP, True, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, False),
        (ScriptRequestType.STOP, True, ScriptRunnerEvent.FRAGMENT_STOPPED_WITH_SUCCESS, False),
        (ScriptRequestType.CONTINUE, False, ScriptRunnerEvent.SCRIPT_STOPPED_FOR_RERUN, False),
    ],
)
@pytest.mark.releases
def test_run_end_is_complete_unless_cut_short_from_outside(
    state: ScriptRequestType, from_outside: bool, event: ScriptRunnerEvent, completed: bool
) -> None:
    events = _Events()
    adapter._dispatch(events, _Runner(state, from_outside), event, {})  # type: ignore[arg-type]
    assert events.finished == [completed]


@pytest.mark.releases
def test_request_stop_marks_the_runner_before_the_stop_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    monkeypatch.setattr(adapter, "_events", adapter._events)  # restored after the test
    adapter.install(_Events())  # patches ScriptRunner once per process
    seen: list[bool] = []

    class Runner:
        def __init__(self) -> None:
            self._requests = self

        def request_stop(self) -> None:  # ScriptRequests.request_stop
            seen.append(getattr(self, adapter._STOP_REQUESTED, False))

        def _wake_parallel_join_barrier_if_waiting(self) -> None: ...

    ScriptRunner.request_stop(Runner())  # type: ignore[arg-type]
    assert seen == [True]


@pytest.fixture(autouse=True)
def _quiet_server_state_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="server_state")


@pytest.mark.releases
def test_a_second_state_does_not_take_the_first_ones_run_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter, "_events", ())
    first, second = _Events(), _Events()
    adapter.install(first)
    adapter.install(second)
    adapter.install(first)  # again: still once
    runner = _Runner(ScriptRequestType.CONTINUE, False)
    adapter._on_runner_event(runner, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS)  # type: ignore[arg-type]
    assert first.finished == [True] and second.finished == [True]
    del second
    gc.collect()
    adapter._on_runner_event(runner, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS)  # type: ignore[arg-type]
    assert first.finished == [True, True]  # a collected state's scheduler is skipped
