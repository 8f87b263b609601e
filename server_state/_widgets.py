"""Shared widgets: ``server_state.widget(st.text_input, "Title", key="title", default="")``.

One call draws a Streamlit input widget that shows a shared key's value and
publishes the user's edit, with the pattern of docs/reruns.md ("Widgets that
edit a shared value") inside:

* before the widget, the shared value is assigned to the widget's
  ``st.session_state`` slot when the key's *version* moved since this session
  last assigned it (a marker in ``st.session_state``), or when the widget has
  no state (it was not drawn in the last run);
* ``on_change`` writes the widget's value to the key and leaves the marker
  alone: when the edit crossed a value pushed from another tab, the version
  moved, so the tab's own run assigns the widget again and the box is right.
  Comparing values instead finds them equal there and leaves the box wrong.

``st.data_editor`` is bound differently: its state is a delta (edited cells,
added and deleted rows, by row *position* in the frame it was drawn with),
which Streamlit does not let a script set. ``on_change`` applies that delta,
by the row labels of the frame this editor showed, to the current shared
frame inside ``server_state.update`` (atomic, retried on conflict), so edits
of other cells by other tabs in between survive. The editor's key carries the
key's version and a per-session edit count, so every new shared frame (and
every edit, published or refused) gets a fresh editor with no delta left.

A write refused by a typed key's type or validator writes nothing: the error
is kept in ``st.session_state`` and shown with ``st.warning`` above the
widget, and the widget is given the shared value again.

Only Streamlit's public API here (``st.session_state``, ``st.warning``, the
widget function given); pandas is imported only for ``st.data_editor``.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from ._base import MISSING
from ._errors import (
    ServerStateError,
    ServerStateKeyError,
    ServerStateTypeError,
    ServerStateValidationError,
)
from ._keys import check_key
from ._typed import Key
from ._values import thaw

if TYPE_CHECKING:
    from ._state import ServerState

__all__ = ["SUPPORTED", "bind"]

W = TypeVar("W")

# The input widgets whose value Streamlit lets a script set through
# st.session_state; st.data_editor is bound through its delta instead.
SUPPORTED = (
    "text_input",
    "text_area",
    "number_input",
    "slider",
    "select_slider",
    "selectbox",
    "radio",
    "checkbox",
    "toggle",
    "multiselect",
    "date_input",
    "time_input",
    "color_picker",
    "data_editor",
)
# Widget arguments that set the value another way: with the value set
# through st.session_state too, Streamlit warns, and the shared value wins.
_VALUE_ARGUMENTS = ("value", "index")
# A deleted row's label is never given to an added row (a tab that still shows
# the deleted row would edit the new one): the next label is kept here.
_NEXT_ROW = "server_state.next_row"


def _widget_name(widget: object) -> str | None:
    """``text_input`` for ``st.text_input``, ``st.sidebar.text_input``,
    ``column.text_input``...; None for anything not from Streamlit."""
    name = getattr(widget, "__name__", None)
    owner = getattr(widget, "__self__", None)
    module = type(owner).__module__ if owner is not None else getattr(widget, "__module__", "")
    if not isinstance(name, str) or not str(module).startswith("streamlit"):
        return None
    return name


def bind(
    state: ServerState,
    widget: Callable[..., W],
    label: str | None,
    *,
    key: str | Key[Any],
    default: Any,
    widget_key: str | None,
    on_change: Callable[..., None] | None,
    args: Iterable[Any],
    kwargs: Mapping[str, Any] | None,
    widget_kwargs: dict[str, Any],
) -> W:
    if isinstance(key, Key):
        if default is MISSING:
            default = key._default
        key = key.name
    name = check_key(key)
    kind = _widget_name(widget)
    if kind not in SUPPORTED:
        raise ServerStateTypeError(
            name,
            f"server_state.widget({getattr(widget, '__name__', widget)!r}, key={name!r}): not a supported "
            f"widget; pass one of st.{', st.'.join(SUPPORTED)} (also from st.sidebar or a column). "
            f"For a button, write in its on_click: server_state.update({name!r}, fn).",
        )
    if on_change is not None and not callable(on_change):
        raise ServerStateTypeError(
            name,
            f"server_state.widget(st.{kind}, key={name!r}): on_change must be callable, got {on_change!r}.",
        )
    given = [arg for arg in _VALUE_ARGUMENTS if arg in widget_kwargs]
    if given:
        raise ServerStateTypeError(
            name,
            f"server_state.widget(st.{kind}, key={name!r}): the widget shows the shared value, so it takes "
            f"no {given[0]}=; give default= for the value while the key is not set.",
        )
    wkey = f"server_state:{name}" if widget_key is None else widget_key
    if not isinstance(wkey, str):
        raise ServerStateTypeError(
            name, f"server_state.widget(st.{kind}, key={name!r}): widget_key must be a str, got {wkey!r}."
        )
    version = state.version(name)  # first: a write in between only costs one more assignment
    value = state.get(name, default)  # binds: this session reruns when the key changes
    if value is MISSING:
        raise ServerStateKeyError(
            name,
            f"server_state.widget(st.{kind}, key={name!r}): server_state has no key {name!r}; give "
            f"default= (what the widget shows until someone edits it), or set the key first.",
        )
    refused = st.session_state.get(f"{wkey}@refused")
    if refused:
        st.warning(refused)
    user = (on_change, tuple(args), dict(kwargs or {}))
    if kind == "data_editor":
        return _data_editor(state, widget, label, name, wkey, version, value, default, user, widget_kwargs)
    if label is None:
        raise ServerStateTypeError(
            name, f"server_state.widget(st.{kind}, key={name!r}): give the widget's label, as for st.{kind}."
        )
    marker = f"{wkey}@version"
    if st.session_state.get(marker) != version or wkey not in st.session_state:
        st.session_state[wkey] = thaw(value)  # a plain list for multiselect, as the widget returns
        st.session_state[marker] = version
    return widget(label, key=wkey, on_change=_publish, args=(state, name, wkey, user), **widget_kwargs)


def _refused(wkey: str, exc: ServerStateError) -> None:
    st.session_state[f"{wkey}@refused"] = str(exc)


def _publish(state: ServerState, name: str, wkey: str, user: tuple[Any, ...]) -> None:
    """on_change: the edit becomes the shared value. The version marker is
    left alone (see the module docstring), except after a refused write: the
    run then gives the widget the shared value again."""
    st.session_state.pop(f"{wkey}@refused", None)
    try:
        state[name] = st.session_state[wkey]
    except (ServerStateTypeError, ServerStateValidationError) as exc:
        _refused(wkey, exc)
        st.session_state[f"{wkey}@version"] = None
        return
    _call_user(user)


def _call_user(user: tuple[Any, ...]) -> None:
    on_change, args, kwargs = user
    if on_change is not None:
        on_change(*args, **kwargs)


# -- st.data_editor -----------------------------------------------------------------


def _data_editor(
    state: ServerState,
    widget: Callable[..., W],
    label: str | None,
    name: str,
    wkey: str,
    version: int,
    frame: Any,
    default: Any,
    user: tuple[Any, ...],
    widget_kwargs: dict[str, Any],
) -> W:
    pd = _pandas()
    if label is not None:
        raise ServerStateTypeError(
            name,
            f"server_state.widget(st.data_editor, key={name!r}): st.data_editor has no label; drop "
            f"{label!r} (the frame is the shared value).",
        )
    if not isinstance(frame, pd.DataFrame):
        raise ServerStateTypeError(
            name,
            f"server_state.widget(st.data_editor, key={name!r}): the shared value is a "
            f"{type(frame).__name__}; st.data_editor is bound to a pandas DataFrame (store one, or give "
            "default=pd.DataFrame(...)).",
        )
    edits = st.session_state.get(f"{wkey}@edits", 0)
    editor_key = f"{wkey}@{version}.{edits}"  # a new frame or an edit: a fresh editor, no delta left
    return widget(
        frame,
        key=editor_key,
        on_change=_publish_delta,
        args=(state, name, wkey, editor_key, frame, default, user),
        **widget_kwargs,
    )


def _publish_delta(
    state: ServerState, name: str, wkey: str, editor_key: str, base: Any, default: Any, user: tuple[Any, ...]
) -> None:
    """on_change of a data editor: its delta, relative to ``base`` (the frame
    it was drawn with), applied to the current shared frame atomically."""
    st.session_state.pop(f"{wkey}@refused", None)
    st.session_state[f"{wkey}@edits"] = st.session_state.get(f"{wkey}@edits", 0) + 1
    delta = st.session_state[editor_key]
    try:
        state.update(name, lambda current: apply_delta(current, base, delta), default=default)
    except (ServerStateTypeError, ServerStateValidationError) as exc:
        _refused(wkey, exc)
        return
    _call_user(user)


def _pandas() -> Any:
    return importlib.import_module("pandas")  # a Streamlit dependency; untyped here


def apply_delta(current: Any, base: Any, delta: Mapping[str, Any]) -> Any:
    """``current`` with the cells, deletions and additions of a data editor
    ``delta`` whose row positions refer to ``base``: a new frame, the rows found
    by their labels in ``base``. An edit of a row another tab deleted is dropped;
    added rows get the next integer label never used
    (kept in ``DataFrame.attrs``)."""
    pd = _pandas()
    if not isinstance(current, pd.DataFrame):
        raise ServerStateTypeError(
            None, f"a data editor's edit applies to a pandas DataFrame, not a {type(current).__name__}."
        )
    labels = list(current.index)
    next_row = _next_row(current, labels)  # before deletions: their labels are never reused
    position = {label: i for i, label in enumerate(labels)}
    columns = {column: current[column].tolist() for column in current.columns}
    for row, changes in (delta.get("edited_rows") or {}).items():
        at = position.get(_label_at(base, int(row)))
        if at is None:
            continue  # another tab deleted the row
        for column, value in changes.items():
            if column in columns:
                columns[column][at] = _cell(value, current[column])
    gone = {_label_at(base, int(row)) for row in delta.get("deleted_rows") or ()}
    keep = [i for i, label in enumerate(labels) if label not in gone]
    if len(keep) < len(labels):
        labels = [labels[i] for i in keep]
        columns = {column: [values[i] for i in keep] for column, values in columns.items()}
    for added in delta.get("added_rows") or ():
        if next_row is None:
            raise ServerStateTypeError(
                None,
                "a row added in st.data_editor needs an integer index to number it; keep the frame's "
                "default RangeIndex (or integer labels).",
            )
        labels.append(next_row)
        next_row += 1
        for column, values in columns.items():
            value = added.get(column)
            values.append(None if value is None else _cell(value, current[column]))
    frame = pd.DataFrame(
        {column: _column(values, current[column].dtype) for column, values in columns.items()},
        index=pd.Index(labels, name=current.index.name),
        columns=current.columns,
    )
    frame.attrs.update(current.attrs)
    if next_row is not None:
        frame.attrs[_NEXT_ROW] = next_row
    return frame


def _label_at(base: Any, row: int) -> Any:
    return base.index[row] if 0 <= row < len(base.index) else object()  # a row no frame has


def _next_row(frame: Any, labels: list[Any]) -> int | None:
    """The label of the next added row: above every label the frame has or
    had; None when the index is not made of integers."""
    if not all(isinstance(label, int) and not isinstance(label, bool) for label in labels):
        return None
    return max(int(frame.attrs.get(_NEXT_ROW, 0)), max(labels, default=-1) + 1)


def _cell(value: Any, column: Any) -> Any:
    """A JSON value from the editor, as the column holds it: dates and times
    come as ISO strings."""
    if not isinstance(value, str):
        return value
    pd = _pandas()
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return pd.Timestamp(value)
    sample = next((v for v in column if v is not None and v == v), None)  # not None, not NaN
    if isinstance(sample, datetime.datetime):
        return datetime.datetime.fromisoformat(value)
    if isinstance(sample, datetime.date):
        return datetime.date.fromisoformat(value[:10])
    if isinstance(sample, datetime.time):
        return datetime.time.fromisoformat(value)
    return value


def _column(values: list[Any], dtype: Any) -> Any:
    """The column in its former dtype where the values allow it (a bool
    column given None becomes object, as pandas would)."""
    pd = _pandas()
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.array(values)
