"""Widgets that edit a shared value (tests/apps/mirror_app.py), on a real
server with the headless client: which mirroring pattern keeps every tab's
box equal to the shared value, with exact run counts.

The crossing case: a tab commits an edit while a value pushed from another
tab is already on its way to its browser. The browser then shows the pushed
value, while the tab's own run (with the tab's edit) makes the edit the
shared value. Nothing in that run tells Streamlit the box needs the value
again, unless the page assigns it: the "version" pattern does, the "value"
pattern cannot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from harness import STREAMLIT_RELEASE, StreamlitServer, StreamlitSession, run_sessions

pytestmark = [pytest.mark.server, pytest.mark.releases]

APP = Path(__file__).resolve().parent / "apps" / "mirror_app.py"
QUIET = 0.8


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET, timeout=10) for s in sessions))


def shown_value(session: StreamlitSession, label: str) -> Any:
    """The value of the widget labelled ``label``; None while the page shows
    no such widget (``wait_until`` predicates are evaluated mid-run too)."""
    return next((w.value for w in session.widgets() if w.label == label), None)


@pytest.fixture(scope="module")
def server() -> StreamlitServer:
    with StreamlitServer(APP) as server:
        yield server  # type: ignore[misc]


def test_keyed_text_input_follows_the_shared_value_with_the_version_pattern(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2, query_string="mode=version")
        try:
            await quiet(a, b)
            a_before, b_before = a.runs_started, b.runs_started
            await a.set_value("Title", "hello")
            await b.wait_until(lambda: shown_value(b, "Title") == "hello", what="B's box shows A's title")
            await quiet(a, b)
            assert (a.runs_started - a_before, b.runs_started - b_before) == (1, 1)
            assert a.widget_value("Title") == "hello"
            assert b.text_containing("title=hello") is not None
            # text_input(value=server_state[k], key=...): from 1.50 (identity by
            # key only) the new value never reaches the script through a keyed
            # box, in any tab; before, the changed value= makes a new widget.
            by_value = "by_value=" if STREAMLIT_RELEASE >= (1, 50) else "by_value=hello"
            for s in (a, b):
                assert s.text_containing("by_value=") == by_value, s.describe()
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", ["version", "value"])
def test_edit_that_crosses_a_pushed_value(server: StreamlitServer, mode: str) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2, query_string=f"mode={mode}")
        try:
            await quiet(a, b)
            start = a.widget_value("N")
            a_before, b_before = a.runs_started, b.runs_started
            await b.set_value("N", start + 10)  # B commits first...
            await a.wait_until(lambda: shown_value(a, "N") == start + 10, what="A's box shows B's value")
            await a.wait_idle()
            # ...and A's user had committed start + 20 before A's browser got it.
            await a.set_value("N", start + 20, overtaken=True)
            await b.wait_until(lambda: shown_value(b, "N") == start + 20, what="B's box shows A's value")
            await quiet(a, b)
            # Runs: B its edit and one pushed rerun; A one pushed rerun and its edit.
            assert (a.runs_started - a_before, b.runs_started - b_before) == (2, 2)
            # The shared value and both sessions' states agree...
            for s in (a, b):
                assert s.text_containing(f"n={start + 20} box_state={start + 20}") is not None, s.describe()
            if mode == "version":
                # ...and so does A's box: its own run assigned the value (the
                # version moved), so the box was sent it again.
                assert a.widget_value("N") == start + 20
            else:
                # ...but A's box still shows what was pushed to it: its run
                # found its state equal to the shared value and sent nothing.
                assert a.widget_value("N") == start + 10
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())
