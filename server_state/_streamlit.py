"""The only module that touches Streamlit internals.

Floor: Streamlit 1.67 (the version this package is tested against). What is
used, and why, in short; docs/streamlit-internals.md has the file and line of
each in 1.67 and what breaks without it:

- ``ScriptRunner.on_event`` (``streamlit.signal_util.Signal``): we connect to every runner at
  its creation, by wrapping ``ScriptRunner.__init__`` once, so each run's start
  and end are observed even when that run never touches ``server_state`` (a
  page that stopped reading a key must stop being rerun for it).
- ``ScriptRunner.request_stop`` (wrapped once) and ``_requests._state``: a run
  ended by ``st.stop()`` (the script put its own requests in STOP) is
  complete; one stopped from outside (fastReruns, the Stop button, a
  disconnect: all through ``request_stop``) is cut short.
- ``ThreadState.get()``: the fragment id of the code running now and whether
  it is a widget callback (callbacks render nothing and must bind nothing).
- ``Runtime.instance()._session_mgr.get_active_session_info``: the thread-safe
  way from a session id to a live ``AppSession``; never kept, looked up each
  time. A disconnected session is kept by Streamlit for a reconnect but is not
  in that map: liveness is the map, not garbage collection.
- ``AppSession._event_loop``, ``._client_state``, ``._fragment_storage``,
  ``track_settling()``/``._settled`` and ``request_rerun(ClientState)``: we
  rerun a session on its own event loop, only once it is settled (no
  ScriptRunner, and its browser has every message of the last run: an
  immediate rerun swallows the click being processed, and a rerun started
  before the last run's messages are sent makes Streamlit drop them from its
  queue), with a copy of its client state (``None`` sends a multipage app to
  its main page), with ``fragment_id`` set to rerun one fragment.
  ``._scriptrunner`` tells whether a run is going or about to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from streamlit import config
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner, ScriptRunnerEvent
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
from streamlit.runtime.scriptrunner_utils.script_run_context import (
    RunLocation,
    ThreadState,
    get_script_run_ctx,
)

__all__ = [
    "RunEvents",
    "active_session",
    "call_soon",
    "current_read_scope",
    "current_session_id",
    "call_later",
    "disconnected_session_ttl",
    "install",
    "request_rerun",
    "run_pending",
    "session_loop",
    "settled_event",
    "watch_session_lifetime",
]

_LOG = logging.getLogger("server_state")

Session = Any  # streamlit.runtime.app_session.AppSession, never stored by us


class RunEvents(Protocol):
    """What the facade is told about runs (on the script thread)."""

    def run_started(self, sid: str, fragment_ids: Iterable[str] | None) -> None: ...

    def run_finished(self, completed: bool) -> None: ...

    def runner_stopped(self, sid: str) -> None: ...


# Every live ServerState's scheduler, in install order (weakly: a state that
# is gone stops following runs).
_events: tuple[weakref.ref[RunEvents], ...] = ()
_install_lock = threading.Lock()
_HOOKED = "_server_state_hooked"
_STOP_REQUESTED = "_server_state_stop_requested"  # set on a runner asked to stop from outside

_FINISHED_COMPLETE = frozenset(
    {ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, ScriptRunnerEvent.FRAGMENT_STOPPED_WITH_SUCCESS}
)
_FINISHED_CUT_SHORT = frozenset(
    {ScriptRunnerEvent.SCRIPT_STOPPED_FOR_RERUN, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_COMPILE_ERROR}
)
_ENQUEUE = ScriptRunnerEvent.ENQUEUE_FORWARD_MSG
_STARTED = ScriptRunnerEvent.SCRIPT_STARTED
_SHUTDOWN = ScriptRunnerEvent.SHUTDOWN


def _on_runner_event(sender: ScriptRunner, event: ScriptRunnerEvent, **payload: Any) -> None:
    if event is _ENQUEUE or not _events:  # the hot case: one per element
        return
    # A receiver that raises skips the receivers after it (AppSession's own):
    # never let ours.
    for ref in _events:
        events = ref()
        if events is None:
            continue
        try:
            _dispatch(events, sender, event, payload)
        except Exception:
            _LOG.exception("server_state failed to follow a script run; reruns may be missed")


def _dispatch(events: RunEvents, sender: ScriptRunner, event: ScriptRunnerEvent, payload: dict[str, Any]) -> None:
    if event is _STARTED:
        events.run_started(sender._session_id, payload.get("fragment_ids_this_run"))
    elif event in _FINISHED_COMPLETE:
        # "With success" covers three ends: the script ran to its end; it
        # called st.stop() (a STOP request it made itself: the run is
        # complete, the browser drops what it did not draw); or a stop was
        # requested from outside through ScriptRunner.request_stop (fastReruns
        # starting a newer run, the user's Stop, a disconnect): its reads are
        # partial.
        stopped_from_outside = getattr(sender, _STOP_REQUESTED, False)
        events.run_finished(not (stopped_from_outside and sender._requests._state is ScriptRequestType.STOP))
    elif event in _FINISHED_CUT_SHORT:
        events.run_finished(False)
    elif event is _SHUTDOWN:
        events.runner_stopped(sender._session_id)


def install(events: RunEvents) -> None:
    """Observe every ScriptRunner created from now on, for ``events`` too
    (each ServerState's scheduler follows runs; a second one does not take
    the first one's place). Idempotent."""
    global _events
    with _install_lock:
        _events = (*(r for r in _events if r() is not None and r() is not events), weakref.ref(events))
        if getattr(ScriptRunner, _HOOKED, False):
            return
        original = ScriptRunner.__init__

        @functools.wraps(original)
        def __init__(self: ScriptRunner, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            # Connected before AppSession connects its own receiver, so ours
            # runs first for every event, on the thread that sends it.
            self.on_event.connect(_on_runner_event, weak=False)

        original_stop = ScriptRunner.request_stop

        @functools.wraps(original_stop)
        def request_stop(self: ScriptRunner) -> None:
            # Every stop from outside the script comes here (AppSession's
            # fastReruns, request_script_stop, shutdown); st.stop() calls
            # ScriptRequests.request_stop directly. The flag is set before the
            # request, so the script thread sees it whenever it sees the STOP.
            setattr(self, _STOP_REQUESTED, True)
            original_stop(self)

        ScriptRunner.__init__ = __init__  # type: ignore[method-assign]
        ScriptRunner.request_stop = request_stop  # type: ignore[method-assign]
        setattr(ScriptRunner, _HOOKED, True)
        if config.get_option("runner.postScriptGC") and _gc_yield_point not in gc.callbacks:
            gc.callbacks.append(_gc_yield_point)


def _gc_yield_point(phase: str, info: dict[str, int]) -> None:
    """A no-op garbage-collector callback, there for its side effect.

    With ``runner.postScriptGC`` (Streamlit's default) every script run ends
    with a full ``gc.collect()``, about 35 ms holding the GIL with a few
    hundred sessions' objects. When a write reruns many sessions, their runs
    end together and those collections queue up one after another. Calling
    into Python at the start of a collection lets another thread take the GIL
    there; if that thread's run ends meanwhile, its ``gc.collect()`` sees one
    in progress and returns at once. Fan-out to 100 sessions took 1.45x
    upstream's time without this (upstream gets the same effect by accident,
    from a WeakSet callback during collection)."""


def hook_current_runner(sid: str) -> bool:
    """Connect to the runner executing this thread's script, when that runner
    was created before ``install`` (the run that first imported us). Returns
    True when this thread is a live runner's script thread."""
    session = active_session(sid)
    runner = getattr(session, "_scriptrunner", None) if session is not None else None
    if runner is None or runner._script_thread is not threading.current_thread():
        return False
    runner.on_event.connect(_on_runner_event, weak=False)  # idempotent: keyed by id
    return True


def current_session_id() -> str | None:
    """The session whose script (or attached thread) runs here, else None."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.session_id


def current_fragment_ids() -> list[str] | None:
    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.fragment_ids_this_run


def current_read_scope() -> tuple[bool, str | None]:
    """``(in_callback, fragment_id)`` of the code running on this thread."""
    try:
        state = ThreadState.get()
    except RuntimeError:  # a thread Streamlit never set up
        return False, None
    return state.run_location is RunLocation.CALLBACK, state.fragment_id


def active_session(sid: str) -> Session | None:
    """The live AppSession of ``sid``, or None once its browser disconnected."""
    if not Runtime.exists():
        return None
    try:
        info = Runtime.instance()._session_mgr.get_active_session_info(sid)
    except AttributeError:  # AppTest's mocked Runtime has no session manager
        return None
    return None if info is None else info.session


def session_loop(session: Session) -> asyncio.AbstractEventLoop:
    return session._event_loop  # type: ignore[no-any-return]


def request_rerun(session: Session, fragment_id: str | None) -> bool:
    """Rerun ``session`` (or one of its fragments) keeping its page and query
    string. Call on the session's event loop. False when the fragment is gone."""
    client_state = ClientState()
    client_state.CopyFrom(session._client_state)
    if fragment_id is not None:
        if not session._fragment_storage.contains(fragment_id):
            return False
        client_state.fragment_id = fragment_id
    session.request_rerun(client_state)
    return True


def call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """Run ``fn`` on ``loop`` from any thread."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
        loop.call_soon_threadsafe(fn)


def call_later(loop: asyncio.AbstractEventLoop, delay: float, fn: Callable[[], None]) -> None:
    """Run ``fn`` on ``loop`` in ``delay`` seconds. Call on that loop."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
        loop.call_later(delay, fn)


def run_pending(session: Session) -> bool:
    """Whether the session has a ScriptRunner (a run going or about to start).
    Read on the session's event loop, which is where Streamlit sets it."""
    return session._scriptrunner is not None


def disconnected_session_ttl() -> float:
    """How long Streamlit keeps a disconnected session for a reconnect
    (``server.disconnectedSessionTTL``, seconds)."""
    try:
        return float(config.get_option("server.disconnectedSessionTTL"))
    except (TypeError, ValueError, RuntimeError):
        return 120.0


def settled_event(session: Session) -> asyncio.Event:
    """Set while the session has no run going and its browser has been sent
    every message of the last one (``AppSession.track_settling``, the
    bookkeeping Streamlit keeps for its agent API). Call on the session's
    event loop; the first call starts the tracking."""
    if session._settled is None:
        session.track_settling()
    return session._settled  # type: ignore[no-any-return]


def watch_session_lifetime(session: Session, on_collected: Callable[[], None]) -> None:
    """Call ``on_collected`` when the AppSession is garbage collected. The
    finalizer can run on any thread in the middle of anything: keep it trivial."""
    weakref.finalize(session, on_collected)
