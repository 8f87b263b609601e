"""The only module that touches Streamlit internals.

Supported: Streamlit 1.37 (the first release with ``st.fragment``) to the
latest 1.x. What is used, and why, in short; docs/streamlit-internals.md has
the file and line of each, from which release it exists, the older
equivalent used before that, and what breaks without it:

- ``ScriptRunner.on_event`` (blinker's ``Signal`` up to 1.62,
  ``streamlit.signal_util.Signal`` from 1.63): we connect to every runner at
  its creation, by wrapping ``ScriptRunner.__init__`` once, so each run's start
  and end are observed even when that run never touches ``server_state`` (a
  page that stopped reading a key must stop being rerun for it).
- ``ScriptRunner.request_stop`` (wrapped once) and ``_requests._state``: a run
  ended by ``st.stop()`` (the script put its own requests in STOP) is
  complete; one stopped from outside (fastReruns, the Stop button, a
  disconnect: all through ``request_stop``) is cut short.
- The fragment id of the code running now and whether it is a widget
  callback (callbacks render nothing and must bind nothing): ``ThreadState``
  (1.58+) with ``RunLocation`` (1.62+); before, ``ctx.current_fragment_id``
  and ``ctx._has_script_started``.
- ``Runtime.instance()._session_mgr.get_active_session_info``: the thread-safe
  way from a session id to a live ``AppSession``; never kept, looked up each
  time. A disconnected session is kept by Streamlit for a reconnect but is not
  in that map: liveness is the map, not garbage collection.
- ``AppSession._event_loop``, ``._client_state``, ``._fragment_storage``,
  the session being *settled* and ``request_rerun(ClientState)``: we rerun a
  session on its own event loop, only once it is settled (no ScriptRunner,
  and its browser has every message of the last run: an immediate rerun
  swallows the click being processed, and a rerun started before the last
  run's messages are sent makes Streamlit drop them from its queue), with a
  copy of its client state (``None`` sends a multipage app to its main page),
  with ``fragment_id`` set to rerun one fragment. Settled is Streamlit's own
  ``track_settling()``/``._settled`` from 1.67; before, it is "no
  ScriptRunner and an empty ``_browser_queue``", re-checked while a rerun
  waits. ``._scriptrunner`` tells whether a run is going or about to start.
- ``Runtime.connect_session`` (wrapped once) and ``AppSession.request_rerun``
  (wrapped once): a tab whose server went away reconnects to whichever server
  the load balancer picks, naming its old session; a server that does not
  know it creates a fresh session, and from 1.38 the browser asks it for no
  run. Such a session is run once by us, unless it asks for a run itself
  (1.37's frontend does, a click does). Hooked at interpreter start by
  ``server_state-boot.pth`` (a restarted server has run no script that could
  import us) and again by ``install``.
- ``AppSession._session_state._new_session_state`` and the key-to-widget
  map (``._key_id_mapper`` from 1.39, ``._key_id_mapping`` before): whether
  the last run set a widget's value through ``st.session_state`` (a callback
  clearing a text box). The browser applies such a value only when it draws
  that run's element; a run pushed right after replaces the element first,
  and the box keeps its text. The scheduler holds such a rerun a moment.

Differences between releases are settled once, at import, by detecting the
feature (an attribute, a module); each branch names the release that brought
what it checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib.metadata
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from streamlit import config
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.runtime import Runtime
from streamlit.runtime.app_session import AppSession

# ScriptRunner, ScriptRunnerEvent and get_script_run_ctx are exported by this
# package in every release 1.37+ (their modules moved in 1.38).
from streamlit.runtime.scriptrunner import ScriptRunner, ScriptRunnerEvent, get_script_run_ctx

try:  # 1.38+: the request and context modules live in scriptrunner_utils
    from streamlit.runtime.scriptrunner_utils import script_run_context as _run_context
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
except ImportError:  # 1.37: the same modules inside scriptrunner
    from streamlit.runtime.scriptrunner import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        script_run_context as _run_context,
    )
    from streamlit.runtime.scriptrunner.script_requests import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        ScriptRequestType,
    )

# 1.58+: the running fragment lives in a per-thread ``ThreadState`` (before:
# ``ctx.current_fragment_id``, shared by the threads attached to the context).
_ThreadState: Any = getattr(_run_context, "ThreadState", None)
# 1.62+: ``ThreadState.run_location`` tells a widget callback from the script
# body (before: no general marker; ``ctx._has_script_started`` is False
# exactly while callbacks run, between ``ctx.reset()`` and
# ``ctx.on_script_start()``, in every release).
_RunLocation: Any = getattr(_run_context, "RunLocation", None)
# 1.67+: AppSession keeps the "settled" bookkeeping itself (before: checked
# by us, see settled_event).
_HAS_SETTLING = hasattr(AppSession, "track_settling")


def _streamlit_minor() -> tuple[int, int]:
    try:
        major, minor = importlib.metadata.version("streamlit").split(".")[:2]
        return int(major), int(minor)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return (99, 0)


# 1.42+: a ScriptRunner skips a queued fragment that a full run removed
# meanwhile; 1.37-1.41 raise "Could not find fragment with id" into the page.
# A behaviour inside a method, not detectable by an attribute: the one
# version comparison of this module.
_RUNNER_SKIPS_VANISHED_FRAGMENT = _streamlit_minor() >= (1, 42)

__all__ = [
    "RunEvents",
    "active_session",
    "call_soon",
    "current_read_scope",
    "current_session_id",
    "call_later",
    "disconnected_session_ttl",
    "hook_reconnects",
    "install",
    "logged_in_name",
    "request_rerun",
    "run_pending",
    "session_loop",
    "settled_event",
    "watch_session_lifetime",
    "widget_values_set",
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


def _dispatch(
    events: RunEvents, sender: ScriptRunner, event: ScriptRunnerEvent, payload: dict[str, Any]
) -> None:
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
    hook_reconnects()


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


# The attribute get_script_run_ctx() reads off the thread (a module constant
# in every release 1.37+): read directly, it costs one getattr instead of a
# call that also considers logging a warning (~180 ns on every write, which
# names its writer for the history).
_CTX_ATTR: str = vars(_run_context)["SCRIPT_RUN_CONTEXT_ATTR_NAME"]


def current_session_id() -> str | None:
    """The session whose script (or attached thread) runs here, else None:
    ``get_script_run_ctx(suppress_warning=True).session_id``."""
    ctx = getattr(threading.current_thread(), _CTX_ATTR, None)
    if ctx is None:
        return None
    sid: str = ctx.session_id
    return sid


def current_fragment_ids() -> list[str] | None:
    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.fragment_ids_this_run


if _RunLocation is not None:  # 1.62+

    def current_read_scope() -> tuple[bool, str | None]:
        """``(in_callback, fragment_id)`` of the code running on this thread."""
        try:
            state = _ThreadState.get()
        except RuntimeError:  # a thread Streamlit never set up
            return False, None
        return state.run_location is _RunLocation.CALLBACK, state.fragment_id

elif _ThreadState is not None:  # 1.58-1.61: ThreadState without run_location

    def current_read_scope() -> tuple[bool, str | None]:
        """``(in_callback, fragment_id)`` of the code running on this thread."""
        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is None:
            return False, None
        try:
            fragment_id = _ThreadState.get().fragment_id
        except RuntimeError:  # a thread Streamlit never set up
            fragment_id = None
        return not ctx._has_script_started, fragment_id

else:  # 1.37-1.57: the fragment id is on the run context

    def current_read_scope() -> tuple[bool, str | None]:
        """``(in_callback, fragment_id)`` of the code running on this thread."""
        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is None:
            return False, None
        return not ctx._has_script_started, ctx.current_fragment_id  # type: ignore[attr-defined,unused-ignore]


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
        if not _RUNNER_SKIPS_VANISHED_FRAGMENT and _runs_other_than_ours(session):
            # 1.37-1.41: a fragment request queued behind a run we did not
            # start would raise into the page if that run dropped the
            # fragment: rerun the whole app instead.
            return False
        client_state.fragment_id = fragment_id
    session.request_rerun(client_state)
    if not _RUNNER_SKIPS_VANISHED_FRAGMENT:
        runner = session._scriptrunner
        setattr(session, _OUR_RUNNER_ATTR, None if runner is None else weakref.ref(runner))
    return True


_OUR_RUNNER_ATTR = "_server_state_our_runner"


def _runs_other_than_ours(session: Session) -> bool:
    """Whether the session's ScriptRunner exists and was not started (or
    given our previous request) by ``request_rerun``: several fragments
    rerun at once queue behind the runner the first one started."""
    runner = session._scriptrunner
    if runner is None:
        return False
    ours = getattr(session, _OUR_RUNNER_ATTR, None)
    return ours is None or ours() is not runner


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


def widget_values_set(session: Session) -> bool:
    """Whether the session's last run set a widget's value through
    ``st.session_state`` (kept in ``_new_session_state`` until the next run
    starts). The browser got the value with that run's element, flagged
    ``set_value``, and takes it only when it draws that element: a later
    run's element, arriving before the browser has drawn, replaces it and the
    value is never shown. Call on the session's event loop."""
    state = session._session_state
    new = state._new_session_state
    if not new:
        return False
    mapper = getattr(state, "_key_id_mapper", None)  # 1.39+: a KeyIdMapper
    widget_keys = state._key_id_mapping if mapper is None else mapper._key_id_mapping
    return any(key in widget_keys for key in new)


def disconnected_session_ttl() -> float:
    """How long Streamlit keeps a disconnected session for a reconnect
    (``server.disconnectedSessionTTL``, seconds)."""
    try:
        return float(config.get_option("server.disconnectedSessionTTL"))
    except (TypeError, ValueError, RuntimeError):
        return 120.0


def settled_event(session: Session) -> asyncio.Event:
    """Set while the session has no run going and its browser has been sent
    every message of the last one. Call on the session's event loop; the
    first call starts the tracking. While something waits on the event it is
    kept up to date; otherwise it is as of the last call (check ``is_set()``
    right after calling)."""
    if _HAS_SETTLING:  # 1.67+: AppSession.track_settling, Streamlit's own bookkeeping
        if session._settled is None:
            session.track_settling()
        return session._settled  # type: ignore[no-any-return]
    # 1.37-1.66: no notification; the closest safe equivalent, re-checked
    # while a rerun waits (see _PolledSettled).
    event: _PolledSettled | None = getattr(session, _SETTLED_ATTR, None)
    if event is None:
        event = _PolledSettled(session)
        setattr(session, _SETTLED_ATTR, event)
    event.recheck()
    return event


_SETTLED_ATTR = "_server_state_settled"
# Re-check intervals while a rerun waits for a session to settle: short at
# first (a run's last messages leave within a flush cycle of the Runtime,
# ~10 ms), then backing off, so a long run costs few wake-ups.
_RECHECK_DELAYS = (0.005, 0.01, 0.02, 0.04)
_RECHECK_MAX_DELAY = 0.05


def _is_settled(session: Session) -> bool:
    """Before 1.67, on the session's event loop: settled is no ScriptRunner
    (a run chain over: Streamlit sets it to None on the runner's SHUTDOWN and
    creates one, on this loop, for every rerun request, a click included) and
    an empty browser queue. The Runtime takes the whole queue at once and
    sends it in order, so messages already taken are delivered before those
    of any run we start; a full run started earlier would clear the queue
    (losing widget resets)."""
    return session._scriptrunner is None and session._browser_queue.is_empty()


class _PolledSettled(asyncio.Event):
    """An ``asyncio.Event`` for "settled" on releases before 1.67: set or
    cleared at each ``recheck()``, and re-checked on a timer only while
    someone awaits ``wait()`` (the scheduler's wait is bounded by its run
    wait limit, so the re-checks are too)."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = weakref.ref(session)  # never keeps a closed tab alive
        self._waiting = 0
        self._poller: asyncio.Future[None] | None = None

    def recheck(self) -> bool:
        session = self._session()
        if session is not None and _is_settled(session):
            self.set()
            return True
        self.clear()
        return False

    async def wait(self) -> Literal[True]:
        self._waiting += 1
        try:
            if self._poller is None and not self.is_set():
                self._poller = asyncio.ensure_future(self._poll())
            return await super().wait()
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        try:
            step = 0
            while self._waiting and not self.is_set():
                delay = _RECHECK_DELAYS[step] if step < len(_RECHECK_DELAYS) else _RECHECK_MAX_DELAY
                step += 1
                await asyncio.sleep(delay)
                if self._session() is None:
                    return
                self.recheck()
        finally:
            self._poller = None


def logged_in_name() -> str | None:
    """The name of the user logged in to the running session (``st.login``),
    else None. 1.42+: ``st.user``, whose ``is_logged_in`` is true only after
    a login (the key exists when the app configures one). 1.37-1.41 have no
    login: ``st.experimental_user`` holds the viewer's email on Community
    Cloud only (``test@example.com`` everywhere else), which names nobody."""
    import streamlit as st

    user = getattr(st, "user", None)
    if user is None:
        return None
    try:
        info = user.to_dict()
    except Exception:  # no script run context: nobody is logged in here
        return None
    if info.get("is_logged_in") is not True:
        return None
    for field in ("name", "email", "preferred_username", "sub"):
        value = info.get(field)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return None


def watch_session_lifetime(session: Session, on_collected: Callable[[], None]) -> None:
    """Call ``on_collected`` when the AppSession is garbage collected. The
    finalizer can run on any thread in the middle of anything: keep it trivial."""
    weakref.finalize(session, on_collected)


# -- tabs that come back from another server --------------------------------------


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


# A reconnected tab is run this long after its websocket is back, unless it
# asked for a run itself meanwhile (Streamlit 1.37's frontend asks at once on
# every reconnect; a click does too): no tab is run twice for its return.
RECONNECT_GRACE = _env_float("SERVER_STATE_RECONNECT_GRACE", 0.25)
# At most this many reconnected tabs are run per second per server: when a
# replica stops, all its tabs land on the survivors within a second, and a
# run for each at once would queue hundreds of scripts on a few cores. Spread
# at this rate, 100 tabs take 2 s (the first starts after RECONNECT_GRACE).
RECONNECT_RATE = _env_float("SERVER_STATE_RECONNECT_RATE", 50.0)

_RECONNECT_HOOKED = "_server_state_reconnect_hooked"
# Sessions created for a tab that named a session this server does not know,
# waiting for their first run; taken out by any run request.
_returning: set[str] = set()
_next_return_run = 0.0  # monotonic time of the last scheduled run; event loop only


def hook_reconnects() -> None:
    """Run once every session created for a tab that comes back from another
    server (a stopped replica, a restarted server). Idempotent.

    Streamlit's frontend reconnects by itself, naming its last session id
    (``existing_session_id``); a server that does not know that id creates a
    new session and, from 1.38 on, the browser sends it nothing (it asks for a
    run on a reconnect only when it thinks the server kept its session). The
    tab would show what it showed before, and follow nothing, until a click.
    A reconnect to the same, still running server resumes the session and is
    left alone (the scheduler reruns it if a key it showed changed).

    Set ``SERVER_STATE_RUN_RECONNECTED=0`` to leave such tabs alone."""
    if os.environ.get("SERVER_STATE_RUN_RECONNECTED", "1") == "0":
        return
    with _install_lock:
        if getattr(Runtime, _RECONNECT_HOOKED, False):
            return
        original_connect = Runtime.connect_session

        @functools.wraps(original_connect)
        def connect_session(self: Runtime, *args: Any, **kwargs: Any) -> str:
            sid: str = original_connect(self, *args, **kwargs)
            previous = kwargs.get("existing_session_id")  # a keyword in every release 1.37+
            if previous and sid != previous:
                try:
                    _run_returning_tab_later(sid)
                except Exception:
                    _LOG.exception("server_state could not schedule the run of a reconnected tab")
            return sid

        original_request = AppSession.request_rerun

        @functools.wraps(original_request)
        def request_rerun(self: AppSession, client_state: ClientState | None) -> None:
            _returning.discard(self.id)
            original_request(self, client_state)

        Runtime.connect_session = connect_session  # type: ignore[method-assign]
        AppSession.request_rerun = request_rerun  # type: ignore[method-assign]
        setattr(Runtime, _RECONNECT_HOOKED, True)


def _run_returning_tab_later(sid: str) -> None:
    """On the event loop (``connect_session`` runs there): schedule the run
    of a returning tab's new session, spread at RECONNECT_RATE."""
    global _next_return_run
    session = active_session(sid)
    if session is None:
        return
    _returning.add(sid)
    now = time.monotonic()
    at = max(now + RECONNECT_GRACE, _next_return_run + 1.0 / RECONNECT_RATE)
    _next_return_run = at
    call_later(session_loop(session), at - now, lambda: _run_returning_tab(sid))


def _run_returning_tab(sid: str) -> None:
    if sid not in _returning:
        return  # it asked for a run itself (or was rerun by us for a change)
    _returning.discard(sid)
    session = active_session(sid)
    if session is None or session._scriptrunner is not None:
        return  # gone again, or a run is going
    _LOG.debug("server_state: running session %s, whose tab came back from another server", sid)
    # The page and query string of the tab are not known here (they were in
    # the session of the server that went away): the app's main page runs.
    request_rerun(session, None)
