"""A headless Streamlit "browser": one websocket session, no JavaScript.

Why: cross-session tests (one session writes, the others get pushed reruns)
need many real sessions against a real server, cheaply and deterministically.
A Chromium per session is too heavy for 50-100 sessions on a 2-core CI box;
this client speaks the browser's wire protocol instead (Streamlit 1.67; the
few differences back to 1.37 are detected from the protobuf classes at import,
see "Protocol differences" below):

* websocket ``ws://HOST:PORT/_stcore/stream``, subprotocol ``streamlit``,
  binary protobuf frames: ``BackMsg`` up, ``ForwardMsg`` down;
* the server runs nothing until the client sends ``BackMsg.rerun_script``
  (the browser does so on page load), so ``connect()`` sends one;
* the page is a tree addressed by ``ForwardMsg.metadata.delta_path``; a run
  starts with ``new_session`` and ends with ``script_finished``, after which
  the client drops the elements the run did not touch -- exactly the rules of
  the frontend's ``ClearStaleNodeVisitor`` (checked against the 1.67 bundle),
  including the fragment-run rules;
* widget interaction re-sends *all* known widget values plus the changed one,
  like the frontend's ``WidgetStateManager``, with the encodings the 1.67
  frontend uses (see the encoding table below).

All waiting is event driven (an ``asyncio.Condition`` notified after each
message), except ``wait_quiet`` which by definition measures silence.
Everything is non-blocking; one reader task per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, NamedTuple, Protocol

from streamlit.proto import Common_pb2
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Block_pb2 import Block
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import StringTriggerValue
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg, ForwardMsgMetadata
from streamlit.proto.Markdown_pb2 import Markdown
from streamlit.proto.MultiSelect_pb2 import MultiSelect
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Radio_pb2 import Radio
from streamlit.proto.Selectbox_pb2 import Selectbox
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

__all__ = [
    "Node",
    "PageInfo",
    "RunRecord",
    "SessionClosedError",
    "StreamlitSession",
    "WidgetInfo",
    "run_sessions",
]

DEFAULT_TIMEOUT = 30.0

RunKind = Literal["full", "fragment"]

# script_finished status names (ForwardMsg.ScriptFinishedStatus) plus two the
# client assigns itself: a run that got a new_session before its
# script_finished, and a run still open when the socket closed.
FINISHED_SUCCESSFULLY = "FINISHED_SUCCESSFULLY"
FINISHED_FRAGMENT_RUN_SUCCESSFULLY = "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"
FINISHED_EARLY_FOR_RERUN = "FINISHED_EARLY_FOR_RERUN"
FINISHED_WITH_COMPILE_ERROR = "FINISHED_WITH_COMPILE_ERROR"
SUPERSEDED = "SUPERSEDED"
DISCONNECTED = "DISCONNECTED"
_COMPLETED_STATUSES = frozenset({FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY})

# Element types that are widgets the harness knows how to read and drive.
_WIDGET_TYPES = frozenset(
    {
        "button",
        "download_button",
        "checkbox",
        "text_input",
        "text_area",
        "number_input",
        "slider",
        "selectbox",
        "radio",
        "multiselect",
        "chat_input",
        "color_picker",
        "date_input",
        "time_input",
        "button_group",
        "file_uploader",
        "camera_input",
        "audio_input",
        "date_time_input",
    }
)
_TRIGGER_TYPES = frozenset({"button", "download_button"})
# st.data_editor's element: "dataframe", "arrow_data_frame" on older releases (1.37).
_EDITOR_TYPES = frozenset({"dataframe", "arrow_data_frame"})
# How long click()/set_value() wait for a widget missing from the page to be
# (re)drawn before raising LookupError (see _find_drawn_widget).
_REDRAW_WAIT = 3.0

# --------------------------------------------------------------------------
# Protocol differences between Streamlit releases, detected from the
# protobuf classes (docs/streamlit-internals.md, "The test harness"):
#
# * 1.67+: a run's fragment ids and script_run_id are in
#   ``ForwardMsg.metadata.run``; before, in ``new_session`` itself
#   (``fragment_ids_this_run``, ``script_run_id``).
_RUN_IN_METADATA = "run" in ForwardMsgMetadata.DESCRIPTOR.fields_by_name
# * 1.43+: chat_input sends ``chat_input_value``; before, a
#   ``string_trigger_value``.
_ChatInputValue: Any = getattr(Common_pb2, "ChatInputValue", None)
# * 1.38+: ``ClientState.is_auto_rerun`` marks a ``run_every`` rerun.
_HAS_IS_AUTO_RERUN = "is_auto_rerun" in ClientState.DESCRIPTOR.fields_by_name
# * A Slider proto without ``raw_value`` (1.37 of the releases tested; 1.57
#   has it): a select_slider sends option *indices* (``double_array_value``).
_SELECT_SLIDER_BY_INDEX = "raw_value" not in Slider.DESCRIPTOR.fields_by_name
# * Option widgets whose proto has no ``raw_value(s)`` send option *indices*
#   (``int_value`` / ``int_array_value``): radio before 1.54, selectbox and
#   multiselect before 1.45.
_INDEX_ENCODED = frozenset(
    kind
    for kind, proto, field_name in (
        ("radio", Radio, "raw_value"),
        ("selectbox", Selectbox, "raw_value"),
        ("multiselect", MultiSelect, "raw_values"),
    )
    if field_name not in proto.DESCRIPTOR.fields_by_name
)


class SessionClosedError(ConnectionError):
    """The websocket closed (or the reader failed) while the test was waiting."""


class _ServerLike(Protocol):
    """What the client needs from ``StreamlitServer`` (duck-typed, no import cycle)."""

    @property
    def ws_url(self) -> str: ...

    def log_tail(self, lines: int = ...) -> str: ...


@dataclass
class RunRecord:
    """One script run as this session saw it (``new_session`` .. ``script_finished``).

    ``kind`` is ``"fragment"`` when the run's fragment ids (``new_session``'s
    ``metadata.run.fragment_ids``; before 1.67 ``new_session.fragment_ids_this_run``)
    are non-empty (a fragment-only rerun), else ``"full"``. ``status`` is the
    ``ScriptFinishedStatus`` name, ``None`` while running, ``"SUPERSEDED"`` if
    the next ``new_session`` arrived first, ``"DISCONNECTED"`` if the socket
    closed mid-run. Times are ``time.monotonic()``.
    """

    index: int
    kind: RunKind
    fragment_ids: tuple[str, ...]
    script_run_id: str
    page_script_hash: str
    started_at: float
    status: str | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the run ended, whatever the status."""
        return self.status is not None

    @property
    def completed(self) -> bool:
        """True if the run ran to the end (full or fragment success)."""
        return self.status in _COMPLETED_STATUSES

    @property
    def duration(self) -> float | None:
        """Seconds from ``new_session`` to ``script_finished`` (None if open)."""
        return None if self.finished_at is None else self.finished_at - self.started_at

    def __str__(self) -> str:
        frag = f" fragments={list(self.fragment_ids)}" if self.fragment_ids else ""
        dur = f" {self.duration * 1000:.0f}ms" if self.duration is not None else ""
        return f"#{self.index} {self.kind}{frag} -> {self.status or 'RUNNING'}{dur}"


@dataclass
class Node:
    """One node of the page tree: an element or a block at ``path``.

    ``run_index`` is the local index of the run that last touched the node
    (setting a node also touches all its ancestors, as in the frontend).
    """

    path: tuple[int, ...]
    is_block: bool
    type: str  # Element/Block oneof name, e.g. "markdown", "vertical"
    proto: Element | Block
    fragment_id: str
    active_script_hash: str
    run_index: int


class WidgetInfo(NamedTuple):
    """A widget on the page: ``(kind, id, label, value)``.

    ``value`` is the value this client would send (its own or the
    server-provided/default one), decoded to Python; None if unknown.
    """

    kind: str
    id: str
    label: str
    value: Any


class PageInfo(NamedTuple):
    """A page of the app, from ``navigation.app_pages`` or ``new_session.app_pages``."""

    page_script_hash: str
    page_name: str
    url_pathname: str
    is_default: bool


@dataclass
class _Widget:
    """Internal: a widget element plus what is needed to drive it."""

    kind: str
    proto: Any
    fragment_id: str
    path: tuple[int, ...]

    @property
    def id(self) -> str:
        return str(self.proto.id)

    @property
    def label(self) -> str:
        if self.kind == "chat_input":
            return str(self.proto.placeholder)
        return str(getattr(self.proto, "label", ""))

    @property
    def form_id(self) -> str:
        return str(getattr(self.proto, "form_id", ""))

    @property
    def ignore_rerun(self) -> bool:
        return bool(getattr(self.proto, "ignore_rerun", False))

    @property
    def is_form_submitter(self) -> bool:
        return self.kind == "button" and bool(self.proto.is_form_submitter)


@dataclass
class _WaitState:
    """Internal: change notification shared by all waits of one session."""

    cond: asyncio.Condition = field(default_factory=asyncio.Condition)


def _is_widget(node_type: str, proto: Element | Block) -> bool:
    """A widget the harness drives: an element of ``_WIDGET_TYPES``, or a
    ``st.data_editor`` (a ``dataframe`` element with a widget id; a plain
    ``st.dataframe`` has none unless it takes selections)."""
    if node_type in _WIDGET_TYPES:
        return True
    return node_type in _EDITOR_TYPES and isinstance(proto, Element) and bool(getattr(proto, node_type).id)


def _hasfield(proto: Any, name: str) -> bool:
    try:
        return bool(proto.HasField(name))
    except ValueError:  # not an optional field: proto3 scalars are always "set"
        return True


# --------------------------------------------------------------------------
# Widget value encodings, as the 1.67 frontend sends them.
#
#   button/download_button  trigger_value=True (one-shot, never remembered)
#   checkbox                bool_value
#   text_input/text_area    string_value
#   number_input            int_value if data_type == INT else double_value
#   slider                  double_array_value (also for int/date/time sliders)
#   select_slider           string_array_value of option *strings*
#                           (Slider proto with type == SELECT_SLIDER; indices before raw_value)
#   selectbox/radio         string_value of the *formatted option* (not an index!)
#   multiselect             string_array_value of formatted options
#   chat_input              chat_input_value=ChatInputValue(data=text) (one-shot)
#   date_input              string_array_value of "YYYY/MM/DD" (1.37's form; later ones read it too)
#   time_input              string_value "HH:MM"
#   data_editor             string_value: JSON of {edited_rows, added_rows, deleted_rows}
#                           (a "dataframe", on 1.37 "arrow_data_frame", element with
#                           an id; no state until edited)
#
# Older releases differ for radio/selectbox/multiselect (indices) and
# chat_input (string_trigger_value): see "Protocol differences" above.
#
# A widget the server changed (session_state / programmatic) arrives with
# ``set_value=True`` and its value in ``value``/``raw_value``; the client then
# adopts it. Otherwise the first sighting seeds the value from ``default``.
# --------------------------------------------------------------------------


def _initial_state(w: _Widget) -> WidgetState | None:
    """The value the frontend would hold for a widget it has just rendered,
    or the server-set value when ``set_value`` is true. None = no value."""
    p = w.proto
    set_value = bool(getattr(p, "set_value", False))
    ws = WidgetState(id=w.id)
    kind = w.kind
    if kind == "checkbox":
        ws.bool_value = bool(p.value) if set_value else bool(p.default)
        return ws
    if kind in ("text_input", "text_area"):
        if set_value:
            if not _hasfield(p, "value"):
                return None
            ws.string_value = p.value
            return ws
        if not _hasfield(p, "default"):
            return None
        ws.string_value = p.default
        return ws
    if kind == "number_input":
        if set_value:
            if not _hasfield(p, "value"):
                return None
            num = p.value
        else:
            if not _hasfield(p, "default"):
                return None
            num = p.default
        if p.data_type == NumberInput.INT:
            ws.int_value = int(num)
        else:
            ws.double_value = float(num)
        return ws
    if kind == "slider":
        values = list(p.value) if set_value else list(p.default)
        if p.type == Slider.SELECT_SLIDER:
            raw = list(getattr(p, "raw_value", ())) if set_value else []
            if raw:  # a newer release sends a server-set select_slider's option strings
                ws.string_array_value.data.extend(raw)
            elif _SELECT_SLIDER_BY_INDEX:
                ws.double_array_value.data.extend(float(v) for v in values)
            else:
                ws.string_array_value.data.extend(p.options[int(i)] for i in values)
        else:
            ws.double_array_value.data.extend(float(v) for v in values)
        return ws
    if kind in _INDEX_ENCODED:  # an older release: option indices
        if kind == "multiselect":
            ws.int_array_value.data.extend(p.value if set_value else p.default)
            return ws
        if set_value:
            if not _hasfield(p, "value"):
                return None
            ws.int_value = p.value
            return ws
        if not _hasfield(p, "default") or len(p.options) == 0:
            return None
        ws.int_value = p.default
        return ws
    if kind in ("selectbox", "radio"):
        if set_value:
            if not _hasfield(p, "raw_value"):
                return None
            ws.string_value = p.raw_value
            return ws
        if not _hasfield(p, "default") or len(p.options) == 0:
            return None
        ws.string_value = p.options[p.default]
        return ws
    if kind == "multiselect":
        if set_value:
            ws.string_array_value.data.extend(p.raw_values)
        else:
            ws.string_array_value.data.extend(p.options[i] for i in p.default)
        return ws
    if kind == "color_picker":
        ws.string_value = p.value if set_value else p.default
        return ws
    if kind == "date_input":
        ws.string_array_value.data.extend(p.value if set_value else p.default)
        return ws
    if kind == "time_input":
        if set_value:
            if not _hasfield(p, "value"):
                return None
            ws.string_value = p.value
            return ws
        if not _hasfield(p, "default"):
            return None
        ws.string_value = p.default
        return ws
    return None  # a data editor holds no state until it is edited, as the frontend's


def _decode_state(w: _Widget | None, ws: WidgetState | None) -> Any:
    """WidgetState -> a Python value for display/assertions."""
    if ws is None:
        return None
    which = ws.WhichOneof("value")
    if which is None:
        return None
    if w is not None and w.kind in _INDEX_ENCODED:  # an older release: option indices
        options = list(w.proto.options)
        if which == "int_array_value":
            return [options[i] for i in ws.int_array_value.data if 0 <= i < len(options)]
        if which == "int_value":
            return options[ws.int_value] if 0 <= ws.int_value < len(options) else None
    if w is not None and w.kind == "date_input":
        dates = [_parse_date(d) for d in ws.string_array_value.data]
        return dates[0] if len(dates) == 1 and not w.proto.is_range else tuple(dates)
    if w is not None and w.kind == "time_input":
        return datetime.time.fromisoformat(ws.string_value) if ws.string_value else None
    if which in ("double_array_value", "int_array_value", "string_array_value"):
        data = list(getattr(ws, which).data)
        if w is not None and w.kind == "slider":
            if w.proto.type == Slider.SELECT_SLIDER and which == "double_array_value":
                data = [w.proto.options[int(v)] for v in data]  # an older release: indices
            elif w.proto.type != Slider.SELECT_SLIDER and w.proto.data_type == Slider.INT:
                data = [int(v) for v in data]
            return data[0] if len(data) == 1 else tuple(data)
        return data
    if which == "chat_input_value":
        return ws.chat_input_value.data
    if which == "string_trigger_value":
        return ws.string_trigger_value.data
    return getattr(ws, which)


def _encode_value(w: _Widget, value: Any) -> WidgetState:
    """A Python value -> the WidgetState the frontend would send for ``w``."""
    p = w.proto
    ws = WidgetState(id=w.id)
    kind = w.kind
    if kind == "checkbox":
        ws.bool_value = bool(value)
    elif kind in ("text_input", "text_area", "color_picker"):
        ws.string_value = str(value)
    elif kind == "number_input":
        if p.data_type == NumberInput.INT:
            ws.int_value = int(value)
        else:
            ws.double_value = float(value)
    elif kind == "slider":
        values = list(value) if isinstance(value, list | tuple) else [value]
        if p.type == Slider.SELECT_SLIDER:
            options = list(p.options)
            for v in values:
                if str(v) not in options:
                    raise ValueError(f"{v!r} is not an option of select_slider {w.label!r}: {options}")
            if _SELECT_SLIDER_BY_INDEX:
                ws.double_array_value.data.extend(float(options.index(str(v))) for v in values)
            else:
                ws.string_array_value.data.extend(str(v) for v in values)
        else:
            ws.double_array_value.data.extend(float(v) for v in values)
    elif kind in _INDEX_ENCODED:  # an older release: option indices
        options = list(p.options)
        if kind == "multiselect":
            ws.int_array_value.data.extend(_option_index(w, options, v) for v in value)
        else:
            ws.int_value = _option_index(w, options, value)
    elif kind in ("selectbox", "radio"):
        options = list(p.options)
        if isinstance(value, int) and not isinstance(value, bool) and str(value) not in options:
            if not 0 <= value < len(options):
                raise ValueError(f"index {value} out of range for {kind} {w.label!r}: {options}")
            value = options[value]  # an index, for convenience
        if str(value) not in options and not getattr(p, "accept_new_options", False):
            raise ValueError(f"{value!r} is not an option of {kind} {w.label!r}: {options}")
        ws.string_value = str(value)
    elif kind == "multiselect":
        ws.string_array_value.data.extend(str(v) for v in value)
    elif kind == "date_input":
        dates = list(value) if isinstance(value, list | tuple) else [value]
        ws.string_array_value.data.extend(d.strftime("%Y/%m/%d") for d in dates)  # 1.37's form; read by all
    elif kind == "time_input":
        ws.string_value = value.strftime("%H:%M")
    elif kind in _EDITOR_TYPES:  # st.data_editor: the delta, as JSON
        ws.string_value = value if isinstance(value, str) else json.dumps(value)
    elif kind == "chat_input":
        if _ChatInputValue is None:  # before 1.43
            ws.string_trigger_value.CopyFrom(StringTriggerValue(data=str(value)))
        else:
            ws.chat_input_value.CopyFrom(_ChatInputValue(data=str(value)))
    else:
        raise NotImplementedError(f"set_value does not support widget kind {kind!r}")
    return ws


def _parse_date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text.replace("/", "-"))


def _option_index(w: _Widget, options: list[str], value: Any) -> int:
    """The index an older release's frontend sends for ``value`` (an option,
    or an index for convenience)."""
    if str(value) in options:
        return options.index(str(value))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(options):
        return value
    raise ValueError(f"{value!r} is not an option of {w.kind} {w.label!r}: {options}")


def _element_texts(el: Element) -> list[str]:
    """Visible text of one element (see ``StreamlitSession.texts``)."""
    kind = el.WhichOneof("type")
    if kind == "markdown":
        if el.markdown.element_type == Markdown.DIVIDER:
            return []
        return [el.markdown.body]
    if kind == "text":
        return [el.text.body]
    if kind == "code":
        return [el.code.code_text]
    if kind == "json":
        return [el.json.body]
    if kind == "heading":
        return [el.heading.body]
    if kind == "metric":
        return [el.metric.label, el.metric.body]
    if kind == "alert":
        return [el.alert.body]
    return []


class StreamlitSession:
    """One headless browser tab connected to a Streamlit server.

    ``target`` is a ``StreamlitServer`` (its log tail then appears in timeout
    errors) or a ``ws://.../_stcore/stream`` URL. ``page`` selects the initial
    page the way the URL path does, so it is a page's ``url_pathname`` (e.g.
    ``"other"`` for ``st.Page(..., url_path="other")``); page names and hashes
    are only known after the first run (use ``switch_page`` for those).
    ``query_string`` is sent as the browser would (without ``?``).

    ``auto_rerun=True`` makes the client honour ``auto_rerun`` messages
    (``st.fragment(run_every=...)``) with timers, as the browser does; off by
    default so tests stay deterministic.

    Usage::

        async with StreamlitSession(server) as s:
            await s.click("Increment")
            assert s.text_containing("count=")
    """

    def __init__(
        self,
        target: _ServerLike | str,
        *,
        page: str | None = None,
        query_string: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        auto_rerun: bool = False,
        resume_session_id: str | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(target, str):
            self.ws_url = target
            self._server: _ServerLike | None = None
        else:
            self.ws_url = target.ws_url
            self._server = target
        self.name = name or ""
        self.timeout = timeout
        self.query_string = query_string.lstrip("?")
        self._initial_page = page
        self._auto_rerun_enabled = auto_rerun
        self._resume_session_id = resume_session_id

        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._wait = _WaitState()
        self._closed_error: BaseException | None = None
        self._closing = False

        # Session facts from new_session / navigation.
        self._session_id = ""
        self._main_script_hash = ""
        self._page_script_hash = ""
        self._ns_pages: list[PageInfo] = []
        self._nav_pages: list[PageInfo] = []
        self.page_not_found: str | None = None

        # Page model.
        self._nodes: dict[tuple[int, ...], Node] = {}
        self._run_index = 0  # local index of the current/last run (0 = none yet)

        # Widgets: values this client would send, keyed by widget id.
        self._widget_values: dict[str, WidgetState] = {}
        self._pending_form_values: dict[str, dict[str, WidgetState]] = {}

        # Runs and messages.
        self.runs: list[RunRecord] = []
        self.messages_received = 0
        self.message_counts: dict[str, int] = {}
        self.last_message_at = time.monotonic()
        self.script_is_running = False
        self.compile_errors: list[str] = []
        self.protocol_errors: list[str] = []
        self.auto_reruns: dict[str, float] = {}
        self._auto_rerun_tasks: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------
    # connection
    # ------------------------------------------------------------------
    async def connect(self, *, wait: bool = True, rerun: bool = True) -> StreamlitSession:
        """Open the websocket and send the initial ``rerun_script`` (as the
        browser does on load). With ``wait``, return after that first run.

        ``rerun=False`` sends nothing: what the browser does when it
        reconnects to a session it was showing and no run was going (then
        pass ``resume_session_id``); the page stays empty until the server
        pushes a run."""
        if self._ws is not None:
            raise RuntimeError("already connected")
        protocols = [Subprotocol("streamlit")]
        if self._resume_session_id:
            # 2nd entry is the XSRF token slot, 3rd the session to resume.
            protocols += [Subprotocol("unused"), Subprotocol(self._resume_session_id)]
        self._ws = await connect(
            self.ws_url,
            subprotocols=protocols,
            max_size=None,
            compression=None,
            open_timeout=self.timeout,
            ping_interval=None,
        )
        self._reader = asyncio.create_task(self._read_loop(), name=f"streamlit-reader-{self.name}")
        if not rerun:
            return self
        try:
            mark = self.runs_started
            # Before the first run no page hashes are known: the browser sends
            # the URL path as page_name and an empty page_script_hash.
            await self._send_rerun(page_script_hash="", page_name=self._initial_page or "", widgets=[])
            if wait:
                await self.wait_for_completed_run(after=mark, what="initial run after connect")
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Close the websocket and stop the reader and any auto-rerun timers."""
        self._closing = True
        for task in self._auto_rerun_tasks.values():
            task.cancel()
        for task in list(self._auto_rerun_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._auto_rerun_tasks.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader

    async def __aenter__(self) -> StreamlitSession:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True while the socket is open and the reader healthy."""
        return self._ws is not None and self._closed_error is None and not self._closing

    # ------------------------------------------------------------------
    # reading
    # ------------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                if isinstance(raw, str):
                    self.protocol_errors.append(f"unexpected text frame: {raw[:200]!r}")
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                self._handle(msg)
                async with self._wait.cond:
                    self._wait.cond.notify_all()
            self._closed_error = SessionClosedError("websocket closed by server")
        except ConnectionClosed as exc:
            self._closed_error = SessionClosedError(f"websocket closed: {exc}")
        except Exception as exc:  # surfaced to waiters, never swallowed
            self._closed_error = exc
        finally:
            if self._closed_error is None:
                self._closed_error = SessionClosedError("reader stopped")
            if not isinstance(self._closed_error, SessionClosedError):
                # A bug in message handling: stop talking to the server too.
                with contextlib.suppress(Exception):
                    await self._ws.close()
            current = self.current_run
            if current is not None and current.status is None:
                current.status = DISCONNECTED
                current.finished_at = time.monotonic()
            async with self._wait.cond:
                self._wait.cond.notify_all()

    def _handle(self, msg: ForwardMsg) -> None:
        """Apply one ForwardMsg to the session model (synchronous, no I/O
        except scheduling auto-rerun timers)."""
        kind = msg.WhichOneof("type") or "<none>"
        self.messages_received += 1
        self.message_counts[kind] = self.message_counts.get(kind, 0) + 1
        self.last_message_at = time.monotonic()
        if kind == "new_session":
            self._on_new_session(msg)
        elif kind == "delta":
            self._on_delta(msg)
        elif kind == "script_finished":
            self._on_script_finished(msg)
        elif kind == "navigation":
            nav = msg.navigation
            self._nav_pages = [_page_info(p) for p in nav.app_pages]
            if nav.page_script_hash:
                self._page_script_hash = nav.page_script_hash
        elif kind == "page_not_found":
            self.page_not_found = msg.page_not_found.page_name
        elif kind == "session_status_changed":
            self.script_is_running = msg.session_status_changed.script_is_running
        elif kind == "session_event":
            ev = msg.session_event
            if ev.WhichOneof("type") == "script_compilation_exception":
                exc = ev.script_compilation_exception
                self.compile_errors.append(f"{exc.type}: {exc.message}")
        elif kind == "auto_rerun":
            self._on_auto_rerun(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self._stop_auto_rerun(fid)
        elif kind == "ref_hash":
            # Only sent for hashes the client claims to cache; we claim none.
            self.protocol_errors.append(f"unexpected ref_hash {msg.ref_hash}")
        # Everything else (page_info_changed, page_config_changed, page_profile,
        # git_info_changed, logo, parent_message, heartbeat_ack, ...) does not
        # affect what tests observe.

    def _on_new_session(self, msg: ForwardMsg) -> None:
        ns = msg.new_session
        now = time.monotonic()
        current = self.current_run
        if current is not None and current.status is None:
            current.status = SUPERSEDED
            current.finished_at = now
        if _RUN_IN_METADATA:  # 1.67+
            fragment_ids = tuple(msg.metadata.run.fragment_ids)
            script_run_id = msg.metadata.run.script_run_id
        else:  # before 1.67: in new_session
            fragment_ids = tuple(ns.fragment_ids_this_run)
            script_run_id = ns.script_run_id
        self._run_index += 1
        record = RunRecord(
            index=self._run_index,
            kind="fragment" if fragment_ids else "full",
            fragment_ids=fragment_ids,
            script_run_id=script_run_id,
            page_script_hash=ns.page_script_hash,
            started_at=now,
        )
        self.runs.append(record)
        if ns.initialize.session_id:
            self._session_id = ns.initialize.session_id
        if ns.main_script_hash:
            self._main_script_hash = ns.main_script_hash
        if ns.app_pages:
            self._ns_pages = [_page_info(p) for p in ns.app_pages]
        if not fragment_ids:
            # Full run: the browser stops auto-rerun timers, and on a page
            # change keeps only the elements the main script produced.
            for fid in list(self._auto_rerun_tasks):
                self._stop_auto_rerun(fid)
            if ns.page_script_hash != self._page_script_hash:
                self._nodes = {
                    p: n for p, n in self._nodes.items() if n.active_script_hash == self._main_script_hash
                }
            self._page_script_hash = ns.page_script_hash

    def _on_delta(self, msg: ForwardMsg) -> None:
        delta = msg.delta
        path = tuple(msg.metadata.delta_path)
        dkind = delta.WhichOneof("type")
        if not path or dkind not in ("new_element", "add_block"):
            return  # new_transient (spinners etc.) is not part of the page model
        existing = self._nodes.get(path)
        node_type: str
        if dkind == "new_element":
            proto: Element | Block = delta.new_element
            node_type = delta.new_element.WhichOneof("type") or ""
            keep_children = False
        else:
            proto = delta.add_block
            node_type = delta.add_block.WhichOneof("type") or ""
            keep_children = (
                existing is not None
                and existing.is_block
                and existing.type == node_type
                and not (
                    node_type == "dialog"
                    and isinstance(existing.proto, Block)
                    and existing.proto.id != delta.add_block.id
                )
            )
        if not keep_children:
            self._drop_descendants(path)
        self._nodes[path] = Node(
            path=path,
            is_block=dkind == "add_block",
            type=node_type,
            proto=proto,
            fragment_id=delta.fragment_id,
            active_script_hash=msg.metadata.active_script_hash,
            run_index=self._run_index,
        )
        # The frontend re-stamps every ancestor block with the current run.
        for i in range(1, len(path)):
            anc = self._nodes.get(path[:i])
            if anc is not None:
                anc.run_index = self._run_index
        if dkind == "new_element" and _is_widget(node_type, proto):
            self._on_widget_element(_Widget(node_type, getattr(proto, node_type), delta.fragment_id, path))

    def _on_widget_element(self, w: _Widget) -> None:
        if not w.id or w.kind in _TRIGGER_TYPES or w.kind == "chat_input":
            return
        if bool(getattr(w.proto, "set_value", False)) or w.id not in self._widget_values:
            state = _initial_state(w)
            if state is None:
                self._widget_values.pop(w.id, None)
            else:
                self._widget_values[w.id] = state

    def _drop_descendants(self, path: tuple[int, ...]) -> None:
        n = len(path)
        for p in [p for p in self._nodes if len(p) > n and p[:n] == path]:
            del self._nodes[p]

    def _on_script_finished(self, msg: ForwardMsg) -> None:
        status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
        current = self.current_run
        if current is None or current.status is not None:
            self.protocol_errors.append(f"script_finished {status} without an open run")
            return
        current.status = status
        current.finished_at = time.monotonic()
        if status == FINISHED_SUCCESSFULLY:
            self._clear_stale_full(current.index)
        elif status == FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
            self._clear_stale_fragment(current.index, set(current.fragment_ids))
        else:
            return  # cut short or compile error: the browser keeps the page as is
        active = {w.id for w in self._widget_nodes()}
        for wid in [wid for wid in self._widget_values if wid not in active]:
            del self._widget_values[wid]

    def _clear_stale_full(self, run_index: int) -> None:
        """Full run: everything this run did not touch goes (toasts excepted)."""
        self._nodes = {p: n for p, n in self._nodes.items() if n.run_index == run_index or n.type == "toast"}

    def _clear_stale_fragment(self, run_index: int, fragment_ids: set[str]) -> None:
        """Fragment run, mirroring the frontend's ClearStaleNodeVisitor: inside a
        block of a rerun fragment that this run touched, untouched fragment
        elements and untouched blocks go; everything else stays."""
        keep: dict[tuple[int, ...], Node] = {}
        ctx: dict[tuple[int, ...], str] = {}  # block path -> fragmentIdOfBlock
        dropped: list[tuple[int, ...]] = []
        for path in sorted(self._nodes):
            if any(path[: len(d)] == d for d in dropped):
                continue
            node = self._nodes[path]
            inherited = ""
            for i in range(len(path) - 1, 0, -1):
                if path[:i] in ctx:
                    inherited = ctx[path[:i]]
                    break
            fresh = node.run_index == run_index
            if node.is_block:
                if inherited and not fresh:
                    dropped.append(path)
                    continue
                own = node.fragment_id if (node.fragment_id in fragment_ids and fresh) else inherited
                ctx[path] = own
                keep[path] = node
            elif node.type == "toast" or not node.fragment_id or not inherited or fresh:
                keep[path] = node
        self._nodes = keep

    # ------------------------------------------------------------------
    # auto rerun (opt-in)
    # ------------------------------------------------------------------
    def _on_auto_rerun(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:
            return
        if self.auto_reruns.get(fragment_id) == interval and fragment_id in self._auto_rerun_tasks:
            return
        self.auto_reruns[fragment_id] = interval
        if not self._auto_rerun_enabled:
            return
        self._stop_auto_rerun(fragment_id, forget=False)
        self._auto_rerun_tasks[fragment_id] = asyncio.get_running_loop().create_task(
            self._auto_rerun_loop(fragment_id, interval)
        )

    def _stop_auto_rerun(self, fragment_id: str, *, forget: bool = True) -> None:
        task = self._auto_rerun_tasks.pop(fragment_id, None)
        if task is not None:
            task.cancel()
        if forget:
            self.auto_reruns.pop(fragment_id, None)

    async def _auto_rerun_loop(self, fragment_id: str, interval: float) -> None:
        """The browser's setInterval: a fragment rerun every ``interval`` s."""
        while not self._closing:
            await asyncio.sleep(interval)
            if not self.connected:
                return
            await self._send_rerun(fragment_id=fragment_id, is_auto_rerun=True)

    # ------------------------------------------------------------------
    # sending
    # ------------------------------------------------------------------
    def _collect_states(self, extra: Iterable[WidgetState] = ()) -> list[WidgetState]:
        states = {wid: ws for wid, ws in self._widget_values.items()}
        for ws in extra:
            states[ws.id] = ws
        return list(states.values())

    async def _send_rerun(
        self,
        *,
        widgets: Sequence[WidgetState] | None = None,
        fragment_id: str = "",
        page_script_hash: str | None = None,
        page_name: str = "",
        is_auto_rerun: bool = False,
    ) -> None:
        if self._ws is None:
            raise RuntimeError("not connected: call connect() first")
        if self._closed_error is not None:
            raise SessionClosedError(f"cannot send, session closed: {self._closed_error}")
        client_state = ClientState(
            query_string=self.query_string,
            page_script_hash=self._page_script_hash if page_script_hash is None else page_script_hash,
            page_name=page_name,
            fragment_id=fragment_id,
            widget_states=WidgetStates(widgets=self._collect_states() if widgets is None else widgets),
        )
        if _HAS_IS_AUTO_RERUN:  # 1.38+
            client_state.is_auto_rerun = is_auto_rerun
        await self._ws.send(BackMsg(rerun_script=client_state).SerializeToString())

    async def _after_send(self, mark: int, wait: bool, what: str) -> RunRecord | None:
        if not wait:
            return None
        return await self.wait_for_completed_run(after=mark, what=what)

    async def rerun(self, *, wait: bool = True) -> RunRecord | None:
        """Send a plain rerun with the current widget values (like pressing R)."""
        mark = self.runs_started
        await self._send_rerun()
        return await self._after_send(mark, wait, "rerun")

    async def click(
        self,
        label: str | None = None,
        *,
        key: str | None = None,
        wait: bool = True,
    ) -> RunRecord | None:
        """Click a button (by label or widget key).

        Sends ``rerun_script`` with the current page hash, all known widget
        values plus the button's ``trigger_value=True``, and -- for a button
        inside a fragment -- ``fragment_id`` so only that fragment reruns.
        A form submit button also sends the form's pending values.

        With ``wait`` (default), return the first run that *started after*
        the click and ran to completion. Caveat: if another trigger (a pushed
        rerun) starts a run in the same instant, that run may be the one
        returned; assert on page content with ``wait_until`` when that matters.
        """
        w = await self._find_drawn_widget(label, key=key, kinds=_TRIGGER_TYPES)
        if w.proto.disabled:
            raise RuntimeError(f"{self._label()}: button {w.label!r} is disabled")
        trigger = WidgetState(id=w.id, trigger_value=True)
        if w.is_form_submitter and w.form_id:
            self._widget_values.update(self._pending_form_values.pop(w.form_id, {}))
        mark = self.runs_started
        await self._send_rerun(widgets=self._collect_states([trigger]), fragment_id=w.fragment_id)
        return await self._after_send(mark, wait, f"run after click({w.label!r})")

    async def set_value(
        self,
        label: str | None,
        value: Any,
        *,
        key: str | None = None,
        wait: bool = True,
        overtaken: bool = False,
    ) -> RunRecord | None:
        """Set a widget's value as a user would, then rerun (as the browser
        does on commit: enter/blur for text, release for sliders).

        ``overtaken=True``: the value is sent, but the widget keeps showing
        what it shows now, as in a browser whose edit crossed a value the
        server had already sent it (``set_value`` from a run that reached the
        browser after the user's commit left it). Later sends carry the shown
        value, as the browser's would.

        Supported: checkbox (bool), text_input/text_area (str), number_input
        (int/float), slider (number or (lo, hi)), select_slider (option),
        selectbox/radio (option, or its index), multiselect (list of options),
        date_input (a date, or a tuple of dates), time_input (a time),
        color_picker (str), st.data_editor (its delta: a dict with
        ``edited_rows``/``added_rows``/``deleted_rows``, or its JSON; find it
        by ``key=``), chat_input (str; one-shot like the browser's submit).

        Widgets inside a ``st.form`` only store the value (no rerun) until the
        form's submit button is clicked; ``ignore_rerun`` widgets likewise.
        Returns the completed run (see ``click`` for the caveat) or None.
        """
        w = await self._find_drawn_widget(label, key=key)
        if getattr(w.proto, "disabled", False):
            raise RuntimeError(f"{self._label()}: {w.kind} {w.label!r} is disabled")
        state = _encode_value(w, value)
        if w.kind == "chat_input":
            mark = self.runs_started
            await self._send_rerun(widgets=self._collect_states([state]), fragment_id=w.fragment_id)
            return await self._after_send(mark, wait, f"run after chat_input({w.label!r})")
        if overtaken:
            mark = self.runs_started
            await self._send_rerun(widgets=self._collect_states([state]), fragment_id=w.fragment_id)
            return await self._after_send(mark, wait, f"run after an overtaken set_value({w.label!r})")
        if w.form_id:
            self._pending_form_values.setdefault(w.form_id, {})[w.id] = state
            return None
        self._widget_values[w.id] = state
        if w.ignore_rerun:
            return None
        mark = self.runs_started
        await self._send_rerun(fragment_id=w.fragment_id)
        return await self._after_send(mark, wait, f"run after set_value({w.label!r})")

    async def send_trigger(
        self, widget_id: str, text: str | None = None, *, fragment_id: str = "", wait: bool = True
    ) -> RunRecord | None:
        """Low-level: send a trigger for a widget id (``trigger_value`` or,
        with ``text``, ``string_trigger_value``) with all known values."""
        if text is None:
            state = WidgetState(id=widget_id, trigger_value=True)
        else:
            state = WidgetState(id=widget_id, string_trigger_value=StringTriggerValue(data=text))
        mark = self.runs_started
        await self._send_rerun(widgets=self._collect_states([state]), fragment_id=fragment_id)
        return await self._after_send(mark, wait, f"run after trigger {widget_id}")

    async def switch_page(self, page: str, *, wait: bool = True) -> RunRecord | None:
        """Navigate to another page (``st.navigation``/MPA) by page hash,
        page name or url_pathname, as the browser's nav link does: a rerun
        with that ``page_script_hash`` and only the main script's widgets."""
        info = self._find_page(page)
        main_widgets = {
            w.id for w in self._widget_nodes() if self._node_hash(w.path) == self._main_script_hash
        }
        states = [ws for wid, ws in self._widget_values.items() if wid in main_widgets]
        mark = self.runs_started
        await self._send_rerun(widgets=states, page_script_hash=info.page_script_hash)
        return await self._after_send(mark, wait, f"run after switch_page({page!r})")

    def _node_hash(self, path: tuple[int, ...]) -> str:
        node = self._nodes.get(path)
        return node.active_script_hash if node is not None else ""

    # ------------------------------------------------------------------
    # session facts
    # ------------------------------------------------------------------
    @property
    def session_id(self) -> str:
        """Server-side session id (``new_session.initialize.session_id``)."""
        return self._session_id

    @property
    def page_script_hash(self) -> str:
        """Hash of the page being shown (the navigation's page for st.navigation apps)."""
        return self._page_script_hash

    @property
    def main_script_hash(self) -> str:
        """Hash of the script given to ``streamlit run``."""
        return self._main_script_hash

    def pages(self) -> list[PageInfo]:
        """The app's pages: from the last ``navigation`` message
        (``st.navigation`` apps) or else ``new_session.app_pages``."""
        return list(self._nav_pages or self._ns_pages)

    def current_page(self) -> PageInfo | None:
        """The PageInfo of ``page_script_hash``, if known."""
        for p in self.pages():
            if p.page_script_hash == self._page_script_hash:
                return p
        return None

    def _find_page(self, page: str) -> PageInfo:
        pages = self.pages()
        for attr in ("page_script_hash", "url_pathname", "page_name"):
            for p in pages:
                if getattr(p, attr) == page:
                    return p
        raise LookupError(f"no page {page!r}; pages: {pages}")

    # ------------------------------------------------------------------
    # runs
    # ------------------------------------------------------------------
    @property
    def current_run(self) -> RunRecord | None:
        """The latest run (open or finished), or None before the first."""
        return self.runs[-1] if self.runs else None

    @property
    def run_in_progress(self) -> bool:
        """True between a ``new_session`` and its ``script_finished``."""
        run = self.current_run
        return run is not None and run.status is None

    @property
    def runs_started(self) -> int:
        """Number of ``new_session`` messages (runs begun)."""
        return len(self.runs)

    @property
    def runs_finished(self) -> int:
        """Runs that ended in any way (including cut short / superseded)."""
        return sum(1 for r in self.runs if r.finished)

    @property
    def completed_runs(self) -> list[RunRecord]:
        """Runs that ran to the end (FINISHED_SUCCESSFULLY / _FRAGMENT_RUN_SUCCESSFULLY)."""
        return [r for r in self.runs if r.completed]

    @property
    def full_runs(self) -> int:
        """Completed full-app runs."""
        return sum(1 for r in self.runs if r.completed and r.kind == "full")

    @property
    def fragment_runs(self) -> int:
        """Completed fragment-only runs."""
        return sum(1 for r in self.runs if r.completed and r.kind == "fragment")

    # ------------------------------------------------------------------
    # waiting
    # ------------------------------------------------------------------
    async def wait_until(
        self,
        predicate: Callable[[], object] | Callable[[StreamlitSession], object],
        timeout: float | None = None,
        *,
        what: str | None = None,
    ) -> None:
        """Wait until ``predicate()`` (or ``predicate(session)``) is truthy;
        it is re-evaluated after every received message. Raises
        ``TimeoutError`` with the session dump, or ``SessionClosedError``.

        The predicate sees the page mid-run too, as a browser shows it: an
        element may be missing there for a moment (``st.write("a", x)`` sends
        an ``st.empty`` placeholder, then the markdown into it; the Runtime
        may send its queue in between). Make it answer False for a page that
        does not show what it looks for, never raise: an exception it raises
        propagates at once."""
        call = _bind_predicate(predicate, self)
        timeout = self.timeout if timeout is None else timeout

        def check() -> bool:
            if call():
                return True
            if self._closed_error is not None:
                raise SessionClosedError(
                    f"{self._label()}: connection lost while waiting for "
                    f"{what or 'condition'}: {self._closed_error!r}\n{self.describe()}"
                ) from self._closed_error
            return False

        try:
            async with self._wait.cond:
                await asyncio.wait_for(self._wait.cond.wait_for(check), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self._label()}: {what or 'condition'} not reached within {timeout:.1f}s\n{self.describe()}"
            ) from None

    async def wait_for_runs(self, n_finished: int, timeout: float | None = None) -> None:
        """Wait until ``runs_finished >= n_finished`` (any finish status)."""
        await self.wait_until(
            lambda: self.runs_finished >= n_finished, timeout, what=f"runs_finished >= {n_finished}"
        )

    async def wait_for_completed_run(
        self, *, after: int, timeout: float | None = None, what: str | None = None
    ) -> RunRecord:
        """Wait for the first run with index > ``after`` (a ``runs_started``
        snapshot) that ran to completion; return it."""
        found: list[RunRecord] = []

        def pred() -> bool:
            for r in self.runs[after:]:
                if r.completed:
                    found.append(r)
                    return True
            return False

        await self.wait_until(pred, timeout, what=what or f"a completed run after #{after}")
        return found[0]

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no run is in progress (event driven, no quiet period)."""
        await self.wait_until(lambda: not self.run_in_progress, timeout, what="no run in progress")

    async def wait_for_text(self, substring: str, timeout: float | None = None) -> str:
        """Wait until some visible text contains ``substring``; return that text."""
        await self.wait_until(
            lambda: self.text_containing(substring) is not None,
            timeout,
            what=f"text containing {substring!r}",
        )
        found = self.text_containing(substring)
        assert found is not None
        return found

    async def wait_quiet(self, quiet_for: float = 0.5, timeout: float | None = None) -> None:
        """Return once no run is in progress and no message arrived for
        ``quiet_for`` seconds. This one measures time on purpose: it is for
        asserting that *nothing more happens* (e.g. no extra reruns)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if self._closed_error is not None and not self._closing:
                raise SessionClosedError(f"{self._label()}: connection lost: {self._closed_error!r}")
            now = time.monotonic()
            silent_for = now - self.last_message_at
            if not self.run_in_progress and silent_for >= quiet_for:
                return
            if now >= deadline:
                raise TimeoutError(
                    f"{self._label()}: not quiet for {quiet_for}s within {timeout:.1f}s "
                    f"(last message {silent_for:.2f}s ago, run in progress={self.run_in_progress})\n"
                    f"{self.describe()}"
                )
            await asyncio.sleep(max(0.01, min(quiet_for - silent_for, deadline - now)))

    # ------------------------------------------------------------------
    # reading the page
    # ------------------------------------------------------------------
    def elements(self) -> list[Node]:
        """All element nodes (not blocks), in delta_path order."""
        return [n for p, n in sorted(self._nodes.items()) if not n.is_block]

    def nodes(self) -> list[Node]:
        """All nodes (elements and blocks), in delta_path order."""
        return [n for _, n in sorted(self._nodes.items())]

    def texts(self) -> list[str]:
        """Visible text strings in delta_path order: markdown/caption/latex
        bodies, text, code, json, headings (title/header/subheader), metric
        label and value (two entries), alert bodies."""
        out: list[str] = []
        for node in self.elements():
            assert isinstance(node.proto, Element)
            out.extend(_element_texts(node.proto))
        return out

    def text_containing(self, substring: str) -> str | None:
        """The first visible text containing ``substring``, or None."""
        for t in self.texts():
            if substring in t:
                return t
        return None

    def exceptions(self) -> list[str]:
        """``st.exception`` / uncaught-error elements on the page ("Type: message")."""
        out = []
        for node in self.elements():
            assert isinstance(node.proto, Element)
            if node.type == "exception":
                e = node.proto.exception
                out.append(f"{e.type}: {e.message}")
        return out

    def _widget_nodes(self) -> list[_Widget]:
        out = []
        for node in self.elements():
            if _is_widget(node.type, node.proto):
                proto = getattr(node.proto, node.type)
                out.append(_Widget(node.type, proto, node.fragment_id, node.path))
        return out

    def widgets(self) -> list[WidgetInfo]:
        """Widgets on the page: ``(kind, id, label, value)`` in delta_path order."""
        return [
            WidgetInfo(w.kind, w.id, w.label, _decode_state(w, self._widget_values.get(w.id)))
            for w in self._widget_nodes()
        ]

    def widget(self, label: str | None = None, *, key: str | None = None) -> WidgetInfo:
        """Find one widget by exact label (or user ``key``)."""
        w = self._find_widget(label, key=key)
        return WidgetInfo(w.kind, w.id, w.label, _decode_state(w, self._widget_values.get(w.id)))

    def widget_value(self, label: str | None = None, *, key: str | None = None) -> Any:
        """The value the client holds for a widget (what it would send)."""
        return self.widget(label, key=key).value

    def widget_fragment_id(self, label: str | None = None, *, key: str | None = None) -> str:
        """The fragment id of the element (empty outside fragments)."""
        return self._find_widget(label, key=key).fragment_id

    async def _find_drawn_widget(
        self, label: str | None, *, key: str | None = None, kinds: Iterable[str] | None = None
    ) -> _Widget:
        """``_find_widget``, but a widget not on the page is waited for (up to
        ``_REDRAW_WAIT`` seconds) before the ``LookupError``, as a person (or
        Playwright) waits for a button to reappear.

        Why: when a run starts while the previous run's deltas are still in
        the server's queue, Streamlit drops those deltas but keeps that run's
        ``script_finished`` (``ForwardMsgQueue.clear(retain_lifecycle_msgs=True)``,
        every release), so the browser clears (part of) the page until the
        new run, whose ``new_session`` follows at once, redraws it. A click
        sent right after a run (the tests' fast clickers) can start such a
        run (seen on 1.37, on a loaded machine).
        """
        try:
            return self._find_widget(label, key=key, kinds=kinds)
        except LookupError:
            pass

        def drawn() -> bool:
            try:
                self._find_widget(label, key=key, kinds=kinds)
            except LookupError:
                return self._closed_error is not None
            return True

        with contextlib.suppress(TimeoutError):
            async with self._wait.cond:
                await asyncio.wait_for(self._wait.cond.wait_for(drawn), min(self.timeout, _REDRAW_WAIT))
        return self._find_widget(label, key=key, kinds=kinds)

    def _find_widget(
        self, label: str | None, *, key: str | None = None, kinds: Iterable[str] | None = None
    ) -> _Widget:
        if label is None and key is None:
            raise ValueError("give a label or a key")
        kinds = frozenset(kinds) if kinds is not None else None
        candidates = [w for w in self._widget_nodes() if kinds is None or w.kind in kinds]
        if key is not None:
            matches = [w for w in candidates if w.id.split("-", 2)[-1] == key]
        else:
            matches = [w for w in candidates if w.label == label]
            if not matches:
                matches = [w for w in candidates if label and label in w.label]
        if len(matches) == 1:
            return matches[0]
        desc = f"key={key!r}" if key is not None else f"label={label!r}"
        listing = "\n  ".join(f"{w.kind} {w.label!r} id={w.id}" for w in candidates) or "(none)"
        if not matches:
            raise LookupError(f"{self._label()}: no widget with {desc}; widgets:\n  {listing}")
        raise LookupError(f"{self._label()}: {len(matches)} widgets with {desc}; use key=:\n  {listing}")

    # ------------------------------------------------------------------
    # diagnostics
    # ------------------------------------------------------------------
    def _label(self) -> str:
        sid = self._session_id[:8] or "?"
        return f"session {self.name + ' ' if self.name else ''}{sid}"

    def describe(self, max_runs: int = 15) -> str:
        """A dump for failure messages: page, texts, widgets, runs, errors,
        and the server log tail when the session was built from a server."""
        lines = [
            f"session_id={self._session_id} page={self._page_script_hash} "
            f"connected={self.connected} messages={self.messages_received}",
            f"texts: {self.texts()!r}",
            "widgets: " + ", ".join(f"{w.kind} {w.label!r}={w.value!r}" for w in self.widgets()),
            f"runs ({len(self.runs)}): " + "; ".join(str(r) for r in self.runs[-max_runs:]),
        ]
        if self.exceptions():
            lines.append(f"exceptions: {self.exceptions()!r}")
        if self.compile_errors:
            lines.append(f"compile errors: {self.compile_errors!r}")
        if self.protocol_errors:
            lines.append(f"protocol errors: {self.protocol_errors!r}")
        if self.page_not_found:
            lines.append(f"page not found: {self.page_not_found!r}")
        if self._closed_error is not None:
            lines.append(f"closed: {self._closed_error!r}")
        if self._server is not None:
            with contextlib.suppress(Exception):
                lines.append("--- server log tail ---\n" + self._server.log_tail(30))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<StreamlitSession {self._label()} runs={len(self.runs)} connected={self.connected}>"


def _page_info(p: Any) -> PageInfo:
    return PageInfo(p.page_script_hash, p.page_name, p.url_pathname, bool(p.is_default))


def _bind_predicate(
    predicate: Callable[[], object] | Callable[[StreamlitSession], object], session: StreamlitSession
) -> Callable[[], object]:
    """Accept both ``lambda: ...`` and ``lambda s: ...`` predicates."""
    try:
        params = [
            p
            for p in inspect.signature(predicate).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if params:
        return lambda: predicate(session)  # type: ignore[call-arg]
    return predicate  # type: ignore[return-value]


async def run_sessions(
    target: _ServerLike | str, n: int, *, connect_timeout: float = 60.0, **kwargs: Any
) -> list[StreamlitSession]:
    """Connect ``n`` sessions concurrently (each waits for its first run).
    On failure, the ones that connected are closed before re-raising."""
    sessions = [StreamlitSession(target, name=str(i), **kwargs) for i in range(n)]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(s.connect() for s in sessions), return_exceptions=True), connect_timeout
        )
    except BaseException:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        raise
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        raise errors[0]
    return sessions
