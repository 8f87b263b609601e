"""The inspector: ``server_state.inspector()`` draws the state on any page.

It lives in one ``st.fragment`` whose run binds its session to every key
(``server_state.snapshot(bind_all=True)``): after any commit, here or in another
replica, the scheduler reruns that fragment alone, as it reruns any stale
fragment (coalesced, once the session's own run is over). It reads values
through a snapshot that binds nothing, so it adds nothing to the "bound
sessions" it shows.

Only public Streamlit API here (``st.fragment``, ``st.dataframe``,
``st.line_chart``, ``st.expander``, ``st.code``, ``st.button``); the rates
come from the scheduler's per-second counters, counted from the first
inspector on.

Private keys: their type, size and version are shown; their value, and the
diff of every commit that changed them, are never rendered (so never sent to
the browser).
"""

from __future__ import annotations

import collections.abc as abc
import datetime
import difflib
import pprint
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

import streamlit as st
from pyrsistent import PDeque, PList, PMap, PSet, PVector

from ._base import MISSING
from ._errors import ServerStateTypeError
from ._values import FrozenCounter, FrozenDefaultDict, FrozenDeque, FrozenDict, FrozenList

if TYPE_CHECKING:
    from ._presence import Member
    from ._state import Commit, ServerState

__all__ = ["HIDDEN", "render"]

HIDDEN = "hidden"  # what a private key's value and diffs show
RATE_SECONDS = 60  # seconds the rate chart spans
LOOP_WARNINGS_SHOWN = 5
_PREVIEW_CHARS = 80  # of a value, in the table
_PREVIEW_ITEMS = 6  # of a container, in the table
_SMALL = 300  # items up to which a diff is a text diff of the whole values
_DIFF_LINES = 60  # lines of one key's diff shown
_DIFFS_KEPT = 2_000  # (store, seq, key) diffs cached: a commit never changes
_MESSAGE = "server_state_inspector:message"  # st.session_state slot of the last revert's outcome

_diffs: OrderedDict[tuple[int, int, str], str] = OrderedDict()
_diffs_lock = threading.Lock()

# Stored types shown by the name a user wrote them with.
_TYPE_NAMES: dict[type, str] = {
    FrozenList: "list",
    FrozenDict: "dict",
    FrozenDeque: "deque",
    FrozenCounter: "Counter",
    FrozenDefaultDict: "defaultdict",
}
_PERSISTENT: tuple[tuple[type, str], ...] = (
    (PVector, "pvector"),
    (PMap, "pmap"),
    (PSet, "pset"),
    (PList, "plist"),
    (PDeque, "pdeque"),
)


def render(
    state: ServerState,
    *,
    private: Iterable[str] | Callable[[str], bool],
    allow_revert: Callable[[], bool] | None,
    history: int,
    deadlines: Callable[[], dict[str, tuple[float, float | None]]] = dict,
    rooms: Callable[[], dict[str, list[Member]]] = dict,
    heartbeats: Callable[[], dict[str, float]] = dict,
) -> None:
    """Check the arguments, start the rate counters, draw the fragment.
    ``deadlines()``: each key's ``(deadline, idle)``; ``rooms()``: who is in
    each room; ``heartbeats()``: the replicas with members, and when their
    heartbeat runs out."""
    is_private = _private_test(private)
    if allow_revert is not None and not callable(allow_revert):
        raise ServerStateTypeError(
            None,
            f"server_state.inspector(allow_revert=...) must be a callable returning True when the "
            f"viewer may revert (or None for read-only), got {allow_revert!r}.",
        )
    if type(history) is not int or history < 0:
        raise ServerStateTypeError(
            None, f"server_state.inspector(history=...) must be an int >= 0 (commits shown), got {history!r}."
        )
    state.rates(1)  # counting starts now
    _inspector(state, is_private, allow_revert, history, (deadlines, rooms, heartbeats))


def _private_test(private: Iterable[str] | Callable[[str], bool]) -> Callable[[str], bool]:
    if callable(private):
        return private
    if isinstance(private, str) or not isinstance(private, Iterable):
        raise ServerStateTypeError(
            None,
            f"server_state.inspector(private=...) must be a list of keys or a predicate "
            f"key -> bool, got {private!r}; for one key write private=[{private!r}].",
        )
    names = frozenset(str.__str__(k) if isinstance(k, str) else k for k in private)
    wrong = [k for k in names if not isinstance(k, str)]
    if wrong:
        raise ServerStateTypeError(
            None, f"server_state.inspector(private=...): keys must be str, got {wrong!r}."
        )
    return names.__contains__


@st.fragment
def _inspector(
    state: ServerState,
    is_private: Callable[[str], bool],
    allow_revert: Callable[[], bool] | None,
    history: int,
    sources: tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]],
) -> None:
    snapshot = state.snapshot(bind_all=True)  # first: a commit from here on reruns this fragment
    deadlines: dict[str, tuple[float, float | None]] = sources[0]()
    keys = list(snapshot)
    commits = state.history()  # newest first, all kept: the last change of each key
    stats = state.stats()

    st.subheader("server_state")
    columns = st.columns(5)
    columns[0].metric("Keys", len(keys))
    columns[1].metric("Sessions", stats["sessions"])
    columns[2].metric("Commit", snapshot.seq)
    columns[3].metric("Reruns pushed", stats["reruns_requested"])
    columns[4].metric("Loops stopped", stats["loops_stopped"])

    last_change: dict[str, datetime.datetime] = {}
    for commit in commits:
        for key in commit.keys:
            last_change.setdefault(key, commit.time)
    rows = []
    for key in keys:
        value = snapshot.stored(key)
        when = last_change.get(key)
        rows.append(
            {
                "key": key,
                "type": _type_name(value),
                "size": _size(value),
                "version": state.version(key),
                "bound sessions": state.bound_sessions(key),
                "last change (UTC)": "" if when is None else f"{when:%H:%M:%S}",
                "expires (UTC)": _expires(deadlines.get(key)),
                "value": HIDDEN if is_private(key) else _preview(value),
            }
        )
    if rows:
        st.dataframe(rows, hide_index=True)
    else:
        st.caption("No keys set yet.")

    _presence(sources[1](), sources[2]())
    _rates_chart(state)
    _loop_warnings(state)
    _commits(state, commits[:history], history, is_private, allow_revert)


def _expires(stored: tuple[float, float | None] | None) -> str:
    """A key's deadline: ``12:00:03 (idle 3600 s)``, or ``12:00:03`` for a fixed time."""
    if stored is None:
        return ""
    at, idle = stored
    when = datetime.datetime.fromtimestamp(at, datetime.UTC)
    day = "" if when.date() == datetime.datetime.now(datetime.UTC).date() else f"{when:%Y-%m-%d} "
    return f"{day}{when:%H:%M:%S}" + ("" if idle is None else f" (idle {idle:g} s)")


def _presence(rooms: dict[str, list[Member]], heartbeats: dict[str, float]) -> None:
    """Who is here: a row per room; the replicas' heartbeats under it."""
    if not rooms:
        return
    st.markdown("**Who is here**")
    st.dataframe(
        [
            {
                "room": room,
                "members": len(members),
                "who": ", ".join(m.name for m in members),
                "first since (UTC)": f"{members[0].since:%H:%M:%S}" if members else "",
            }
            for room, members in rooms.items()
        ],
        hide_index=True,
    )
    if heartbeats:
        st.caption(
            "Replicas with members (a replica's members leave when its heartbeat runs out): "
            + ", ".join(
                f"{name} until {datetime.datetime.fromtimestamp(at, datetime.UTC):%H:%M:%S}"
                for name, at in sorted(heartbeats.items())
            )
        )


def _rates_chart(state: ServerState) -> None:
    seconds = state.rates(RATE_SECONDS)
    times = [datetime.datetime.fromtimestamp(s, datetime.UTC).replace(tzinfo=None) for s, _, _ in seconds]
    st.caption(
        f"Commits and pushed reruns per second, last {RATE_SECONDS} s (UTC; the last second is "
        "still counting; the inspector's own reruns count too)"
    )
    st.line_chart(
        {
            "time": times,
            "writes/s": [commits for _, commits, _ in seconds],
            "pushed reruns/s": [reruns for _, _, reruns in seconds],
        },
        x="time",
        height=180,
    )


def _loop_warnings(state: ServerState) -> None:
    reports = state.loop_warnings()[-LOOP_WARNINGS_SHOWN:]
    for at, _, message in reversed(reports):
        when = datetime.datetime.fromtimestamp(at, datetime.UTC)
        st.warning(f"{when:%H:%M:%S} UTC — {message}")


def _commits(
    state: ServerState,
    commits: list[Commit],
    shown: int,
    is_private: Callable[[str], bool],
    allow_revert: Callable[[], bool] | None,
) -> None:
    message = st.session_state.pop(_MESSAGE, None)
    if message is not None:
        (st.success if message[0] == "ok" else st.error)(message[1])
    if not shown:
        return  # history=0: no commits wanted
    st.markdown("**Recent commits**")
    if not commits:
        st.caption("No commits kept (see configure(history=...)).")
        return
    can_revert = allow_revert is not None and bool(allow_revert())
    store = id(state)
    for index, commit in enumerate(commits):
        label = f"#{commit.seq} · {commit.time:%H:%M:%S} UTC · {_who(commit.origin)} · " + ", ".join(
            _markdown_text(k) for k in commit.keys
        )
        with st.expander(label):
            for key in commit.keys:
                st.markdown(f"**{_markdown_text(key)}**")
                if is_private(key):
                    st.code(HIDDEN, language=None)
                else:
                    st.code(_diff(store, commit, key), language="diff")
            if can_revert and index > 0:  # the newest commit is the state now
                st.button(
                    f"Revert to #{commit.seq}",
                    key=f"server_state_inspector:revert:{commit.seq}",
                    help="Write back the values every key changed since had right after this commit, "
                    "as one new commit.",
                    on_click=_revert,
                    args=(state, commit.seq, allow_revert),
                )


def _who(origin: str) -> str:
    """``origin`` with a session id cut to its first 8 characters."""
    head, sep, sid = origin.rpartition("session ")
    return f"{head}session {sid[:8]}" if sep and len(sid) > 8 else origin


def _revert(state: ServerState, seq: int, allow_revert: Callable[[], bool]) -> None:
    """The button's callback: asks ``allow_revert`` again, at click time."""
    if not allow_revert():
        st.session_state[_MESSAGE] = ("error", f"Not allowed to revert to #{seq}.")
        return
    try:
        changed = state.revert(seq)
    except LookupError as exc:
        st.session_state[_MESSAGE] = ("error", str(exc))
        return
    if changed:
        names = ", ".join(_markdown_text(k) for k in changed)
        st.session_state[_MESSAGE] = ("ok", f"Reverted {names} to their values after #{seq}.")
    else:
        st.session_state[_MESSAGE] = ("ok", f"Nothing to revert: the state already is that after #{seq}.")


# -- what a value looks like ---------------------------------------------------------


def _type_name(value: Any) -> str:
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for cls, persistent_name in _PERSISTENT:
        if isinstance(value, cls):
            return persistent_name
    return type(value).__name__


def _size(value: Any) -> str:
    """Items (characters, bytes), or the shape of an array or frame."""
    if isinstance(value, (bool, int, float, complex)) or value is None:
        return ""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return " x ".join(map(str, shape))
    try:
        return str(len(value))
    except Exception:  # no len(): an opaque object
        return ""


def _preview(value: Any) -> str:
    text = _short(value, 2)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def _short(value: Any, depth: int) -> str:
    """A repr that costs O(what it shows), whatever the size of ``value``."""
    if isinstance(value, (str, bytes)):
        return repr(value[:_PREVIEW_CHARS]) + ("…" if len(value) > _PREVIEW_CHARS else "")
    if isinstance(value, (abc.Mapping, PMap)):
        if depth <= 0:
            return "{…}" if len(value) else "{}"
        items = [f"{_short(k, 0)}: {_short(v, depth - 1)}" for k, v in islice(value.items(), _PREVIEW_ITEMS)]
        return "{" + ", ".join(items) + (", …" if len(value) > _PREVIEW_ITEMS else "") + "}"
    if isinstance(value, (list, tuple, abc.Set, PVector, PSet, PList, PDeque, abc.Sequence)) and not hasattr(
        value, "shape"
    ):
        opening, closing = (
            ("(", ")")
            if isinstance(value, tuple)
            else ("{", "}")
            if isinstance(value, abc.Set)
            else ("[", "]")
        )
        if depth <= 0:
            return opening + ("…" if len(value) else "") + closing
        items = [_short(v, depth - 1) for v in islice(value, _PREVIEW_ITEMS)]
        return opening + ", ".join(items) + (", …" if len(value) > _PREVIEW_ITEMS else "") + closing
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"<{type(value).__name__} {'x'.join(map(str, shape))}>"
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the page
        text = f"<{type(value).__name__}: repr failed: {exc!r}>"
    text = " ".join(text.split())
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


# -- what a commit changed -----------------------------------------------------------


def _diff(store: int, commit: Commit, key: str) -> str:
    """The readable diff of ``key`` in ``commit``, computed once per commit."""
    slot = (store, commit.seq, key)
    with _diffs_lock:
        text = _diffs.get(slot)
        if text is not None:
            _diffs.move_to_end(slot)
            return text
    change = commit.change(key)  # stored forms: no read form built for an old value
    if change.old is MISSING:
        text = _lines("+ ", change.new)
    elif change.new is MISSING:
        text = _lines("- ", change.old) + "\n(deleted)"
    else:
        text = _change(change.old, change.new)
    with _diffs_lock:
        _diffs[slot] = text
        while len(_diffs) > _DIFFS_KEPT:
            _diffs.popitem(last=False)
    return text


def _lines(prefix: str, value: Any) -> str:
    if _is_small(value):
        lines = pprint.pformat(value, width=80, sort_dicts=False).splitlines()
    else:
        lines = [f"{_type_name(value)} of {_size(value)} items: {_preview(value)}"]
    return _cap([prefix + line for line in lines])


def _is_small(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return len(value) <= 20 * _SMALL
    if isinstance(value, (abc.Mapping, abc.Sequence, abc.Set)) and not hasattr(value, "shape"):
        return len(value) <= _SMALL
    return not hasattr(value, "shape")


def _change(old: Any, new: Any) -> str:
    if _is_small(old) and _is_small(new):
        a = pprint.pformat(old, width=80, sort_dicts=False).splitlines()
        b = pprint.pformat(new, width=80, sort_dicts=False).splitlines()
        lines = list(difflib.unified_diff(a, b, lineterm="", n=2))[2:]  # no ---/+++ file header
        if sum(line.startswith("@@") for line in lines) == 1:
            lines = lines[1:]  # one hunk: its line numbers say nothing
        return _cap(lines) if lines else "(the same text: " + _preview(new) + ")"
    if isinstance(old, abc.Mapping) and isinstance(new, abc.Mapping):
        return _cap(_mapping_change(old, new))
    if isinstance(old, abc.Sequence) and isinstance(new, abc.Sequence) and not isinstance(old, (str, bytes)):
        return _cap(_sequence_change(old, new))
    return _cap([f"- {_preview(old)}", f"+ {_preview(new)}"])


def _mapping_change(old: abc.Mapping[Any, Any], new: abc.Mapping[Any, Any]) -> list[str]:
    lines = [f"@@ {len(old)} -> {len(new)} entries @@"]
    for k, v in old.items():
        if k not in new:
            lines.append(f"- {_short(k, 0)}: {_preview(v)}")
        elif new[k] is not v and not _equal(new[k], v):
            lines.append(f"- {_short(k, 0)}: {_preview(v)}")
            lines.append(f"+ {_short(k, 0)}: {_preview(new[k])}")
        if len(lines) > _DIFF_LINES:
            return lines
    lines.extend(f"+ {_short(k, 0)}: {_preview(v)}" for k, v in islice(new.items(), 0, None) if k not in old)
    return lines


def _sequence_change(old: abc.Sequence[Any], new: abc.Sequence[Any]) -> list[str]:
    """The changed middle: what is left once the common head and tail (by
    identity, then equality) are taken off."""
    head, limit = 0, min(len(old), len(new))
    while head < limit and (old[head] is new[head] or _equal(old[head], new[head])):
        head += 1
    tail = 0
    while tail < limit - head and (
        old[-1 - tail] is new[-1 - tail] or _equal(old[-1 - tail], new[-1 - tail])
    ):
        tail += 1
    lines = [f"@@ items {head}..: {len(old)} -> {len(new)} items @@"]
    for sign, items in (("-", old), ("+", new)):
        end = min(len(items) - tail, head + _DIFF_LINES)
        lines.extend(f"{sign} [{head + i}] {_preview(items[head + i])}" for i in range(end - head))
    return lines


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # numpy arrays and the like: no plain truth value
        return False


def _cap(lines: list[str]) -> str:
    if len(lines) > _DIFF_LINES:
        lines = [*lines[:_DIFF_LINES], f"… {len(lines) - _DIFF_LINES} more lines"]
    return "\n".join(lines)


def _markdown_text(text: str) -> str:
    """``text`` shown as itself in Streamlit markdown (a key named ``*a*``)."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>~$:" else c for c in text)
