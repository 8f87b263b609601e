"""server_state.widget on a real server (tests/apps/bound_widgets_app.py),
driven by the headless client: for each widget kind, two tabs editing
alternately and at once end showing the same value, the last edit, with
exact run counts; an edit that crosses a pushed value; a data editor whose
cells two tabs edit at once keeps both edits; a typed key's validator
refusing an edit puts the shared value back; a bound box in a fragment
reruns only the fragment."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import pytest
from harness import STREAMLIT_RELEASE, StreamlitServer, StreamlitSession, run_sessions

pytestmark = pytest.mark.server

APP = Path(__file__).resolve().parent / "apps" / "bound_widgets_app.py"
QUIET = 0.6

# kind's shared key: (label, first edit, second edit); both differ from the default.
KINDS: dict[str, tuple[str, Any, Any]] = {
    "text": ("Text", "alpha", "beta"),
    "area": ("Area", "one\ntwo", "three"),
    "number": ("Number", 7, 8),
    "slider": ("Slider", 10, 20),
    "select_slider": ("Select slider", "green", "blue"),
    "selectbox": ("Selectbox", "green", "blue"),
    "radio": ("Radio", "green", "blue"),
    "checkbox": ("Checkbox", True, False),
    "toggle": ("Toggle", True, False),
    "multiselect": ("Multiselect", ["green"], ["blue", "red"]),
    "date": ("Date", datetime.date(2024, 2, 2), datetime.date(2024, 3, 3)),
    "time": ("Time", datetime.time(10, 30), datetime.time(11, 45)),
    "colour": ("Colour", "#ff0000", "#00ff00"),
}


def line(s: StreamlitSession, key: str) -> str | None:
    """The page's ``key=...`` line: what the widget call returned."""
    return next((t for t in s.texts() if t.startswith(f"{key}=")), None)


def shows(s: StreamlitSession, key: str, value: Any) -> bool:
    """The box holds ``value`` and the widget call returned it."""
    label = KINDS[key][0] if key in KINDS else key.capitalize()
    return bool(s.widget_value(label) == value and line(s, key) == f"{key}={value!r}")


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET, timeout=15) for s in sessions))


def runs(*sessions: StreamlitSession) -> tuple[int, ...]:
    return tuple(s.runs_started for s in sessions)


@pytest.fixture(scope="module")
def server() -> StreamlitServer:
    with StreamlitServer(APP) as server:
        yield server  # type: ignore[misc]


def test_two_tabs_editing_each_kind_alternately_and_at_once(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            for key, (label, first, second) in KINDS.items():
                # Alternately: each edit is one run of the editor and one pushed rerun of the other tab.
                before = runs(a, b)
                await a.set_value(label, first)
                await b.wait_until(lambda k=key, v=first: shows(b, k, v), what=f"B shows A's {key}")
                await b.set_value(label, second)
                await a.wait_until(lambda k=key, v=second: shows(a, k, v), what=f"A shows B's {key}")
                await quiet(a, b)
                after = runs(a, b)
                assert (after[0] - before[0], after[1] - before[1]) == (2, 2), key
                assert shows(a, key, second) and shows(b, key, second), key
            for key, (label, first, second) in KINDS.items():
                # At once: both tabs end showing the same value, one of the two edits (the
                # last committed); a bool has two values, so both tabs write the same one.
                mine, theirs = (first, first) if isinstance(first, bool) else (first, second)
                before = runs(a, b)
                await asyncio.gather(a.set_value(label, mine), b.set_value(label, theirs))
                await quiet(a, b)
                final = a.widget_value(label)
                assert final in (mine, theirs), key
                assert shows(a, key, final) and shows(b, key, final), (key, a.describe(), b.describe())
                after = runs(a, b)
                # Its edit's run, and at most one pushed rerun (for a tab whose run showed the first edit).
                assert 1 <= after[0] - before[0] <= 2 and 1 <= after[1] - before[1] <= 2, key
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())


@pytest.mark.releases
def test_an_edit_that_crosses_a_pushed_value_ends_in_both_boxes(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            start = a.widget_value("Number")
            before = runs(a, b)
            await b.set_value("Number", start + 10)  # B commits first...
            await a.wait_until(lambda: a.widget_value("Number") == start + 10, what="A shows B's value")
            await a.wait_idle()
            # ...and A's user had committed start + 20 before A's browser got B's value.
            await a.set_value("Number", start + 20, overtaken=True)
            await b.wait_until(lambda: shows(b, "number", start + 20), what="B shows A's value")
            await quiet(a, b)
            after = runs(a, b)
            assert (after[0] - before[0], after[1] - before[1]) == (2, 2)
            # A's own run assigned its box again (the version moved): both show A's edit.
            assert shows(a, "number", start + 20) and shows(b, "number", start + 20)
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())


def test_a_refused_edit_puts_the_shared_value_back_and_says_why(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            await a.set_value("Count", 3)
            await b.wait_until(lambda: shows(b, "count", 3), what="B shows the count")
            await quiet(a, b)
            before = runs(a, b)
            await a.set_value("Count", -1)
            await a.wait_until(lambda: shows(a, "count", 3), what="A's box shows the shared count again")
            await quiet(a, b)
            warning = a.text_containing("validator")
            assert warning is not None and "'count'" in warning, a.describe()
            after = runs(a, b)
            assert (after[0] - before[0], after[1] - before[1]) == (1, 0)  # nothing was written
            assert shows(b, "count", 3)
            await a.set_value("Count", 4)  # the next accepted edit clears the warning
            await b.wait_until(lambda: shows(b, "count", 4), what="B shows the new count")
            await a.wait_until(lambda: a.text_containing("validator") is None, what="the warning gone")
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())


def test_a_bound_box_in_a_fragment_reruns_only_the_fragment(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            full, fragment = b.full_runs, b.fragment_runs
            await a.set_value("Note", "hi")
            await b.wait_until(lambda: shows(b, "note", "hi"), what="B shows the note")
            await quiet(a, b)
            assert (b.full_runs - full, b.fragment_runs - fragment) == (0, 1)
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())


def editor_key(s: StreamlitSession) -> str:
    """The data editor's widget key (it carries the frame's version)."""
    (editor,) = [w for w in s.widgets() if w.kind in ("dataframe", "arrow_data_frame")]
    return editor.id.split("-", 2)[-1]


def todo(s: StreamlitSession) -> str | None:
    return line(s, "todo")


def test_two_tabs_editing_different_cells_at_once_both_keep_their_edits(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            assert todo(a) == todo(b) == "todo=milk:False; eggs:False; bread:False"
            before = runs(a, b)
            await asyncio.gather(
                a.set_value(None, {"edited_rows": {"0": {"task": "oat milk"}}}, key=editor_key(a)),
                b.set_value(None, {"edited_rows": {"1": {"done": True}}}, key=editor_key(b)),
            )
            both = "todo=oat milk:False; eggs:True; bread:False"
            for s in (a, b):
                await s.wait_until(lambda s=s: todo(s) == both, what="both cell edits shown")
            await quiet(a, b)
            after = runs(a, b)
            assert 1 <= after[0] - before[0] <= 2 and 1 <= after[1] - before[1] <= 2
            # Rows: one tab adds a row while the other deletes one, each from the frame it shows.
            await asyncio.gather(
                a.set_value(None, {"added_rows": [{"done": False, "task": "jam"}]}, key=editor_key(a)),
                b.set_value(None, {"deleted_rows": [2]}, key=editor_key(b)),
            )
            rows = "todo=oat milk:False; eggs:True; jam:False"
            for s in (a, b):
                await s.wait_until(lambda s=s: todo(s) == rows, what="the added row in, the deleted one out")
            await quiet(a, b)
            assert todo(a) == todo(b) == rows
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())


def test_streamlit_release_is_known() -> None:
    assert STREAMLIT_RELEASE >= (1, 37)
