"""The test harness itself, against a real server and tests/apps/harness_app.py.

These prove that the headless client models the page the way the browser
does (texts, widgets, stale-element removal, fragment runs, pages) and that
its interactions reach the script exactly once, so that the server_state
tests built on it can trust what they observe. Plain functions calling
``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from harness import (
    RunRecord,
    ServerStartError,
    StreamlitServer,
    StreamlitSession,
    run_sessions,
)
from harness.browser import chromium_path, sync_chromium, wait_for_app_idle

pytestmark = pytest.mark.server

APPS = Path(__file__).resolve().parent / "apps"
HARNESS_APP = APPS / "harness_app.py"
TIMEOUT = 60.0  # generous: CI has 2 cores

T = TypeVar("T")

HOME_TEXTS = [
    "common=yes",
    "Harness home",
    "clicks=0",
    "body_runs=1",
    "hello=world",
    "level=3",
    "ratio=0.5",
    "agree=False",
    "color=red",
    "qty=1",
    "size=M",
    "caption text",
    "Temp",
    "21 C",
    "frag_clicks=0",
    "frag_runs=1",
    "note=",
]


@pytest.fixture(scope="module")
def server() -> Iterator[StreamlitServer]:
    """One server for the module: every test uses fresh sessions, and
    session_state is per session, so tests do not see each other."""
    with StreamlitServer(
        HARNESS_APP,
        options={"runner.postScriptGC": "false"},
    ) as srv:
        yield srv


def run(server: StreamlitServer, body: Callable[[StreamlitSession], Awaitable[T]]) -> T:
    """Run ``body`` with one connected session, in a fresh event loop."""

    async def main() -> T:
        async with StreamlitSession(server, timeout=TIMEOUT) as s:
            return await body(s)

    return asyncio.run(main())


@pytest.mark.releases
def test_connect_renders_the_page(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        assert s.texts() == HOME_TEXTS, s.describe()
        assert s.session_id
        assert [r.kind for r in s.runs] == ["full"]
        assert s.runs[0].status == "FINISHED_SUCCESSFULLY"
        assert s.runs_started == s.runs_finished == s.full_runs == 1
        assert s.fragment_runs == 0
        kinds = {(w.kind, w.label) for w in s.widgets()}
        assert {
            ("button", "Increment"),
            ("text_input", "Name"),
            ("slider", "Level"),
            ("slider", "Ratio"),
            ("checkbox", "Agree"),
            ("selectbox", "Color"),
            ("number_input", "Qty"),
            ("radio", "Size"),
            ("button", "Frag increment"),
            ("text_input", "Note"),
            ("button", "Save"),
        } == kinds
        # Defaults as the browser would hold them before any interaction.
        assert s.widget_value("Name") == "world"
        assert s.widget_value("Level") == 3
        assert s.widget_value("Ratio") == 0.5
        assert s.widget_value("Agree") is False
        assert s.widget_value("Color") == "red"
        assert s.widget_value("Qty") == 1
        assert s.widget_value("Size") == "M"

    run(server, body)


@pytest.mark.releases
def test_click_increments_exactly_once_per_click(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        for i in range(1, 4):
            rec = await s.click("Increment")
            assert isinstance(rec, RunRecord) and rec.kind == "full"
            assert s.text_containing("clicks=") == f"clicks={i}", s.describe()
        # Later reruns re-send widget values but never the one-shot trigger.
        await s.rerun()
        assert s.text_containing("clicks=") == "clicks=3"
        await s.wait_quiet(quiet_for=0.5, timeout=TIMEOUT)
        assert s.full_runs == 5 and s.runs_started == 5, s.describe()
        assert s.text_containing("body_runs=") == "body_runs=5"

    run(server, body)


@pytest.mark.releases
def test_set_value_updates_each_echo(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        cases: list[tuple[str, object, str]] = [
            ("Name", "Bob", "hello=Bob"),
            ("Level", 7, "level=7"),
            ("Ratio", 0.25, "ratio=0.25"),
            ("Agree", True, "agree=True"),
            ("Color", "blue", "color=blue"),
            ("Qty", 42, "qty=42"),
            ("Size", "L", "size=L"),
        ]
        for label, value, expected in cases:
            await s.set_value(label, value)
            prefix = expected.split("=")[0] + "="
            assert s.text_containing(prefix) == expected, s.describe()
            assert s.widget_value(label) == value
        # Every earlier value is still sent (and so still shown) on a click.
        await s.click("Increment")
        for _label, _value, expected in cases:
            assert expected in s.texts(), s.describe()
        # A selectbox also accepts an option index.
        await s.set_value("Color", 1)
        assert s.text_containing("color=") == "color=green"

    run(server, body)


@pytest.mark.releases
def test_form_values_are_sent_on_submit(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        started = s.runs_started
        assert await s.set_value("Note", "hi") is None  # held in the form, no rerun
        assert s.runs_started == started
        await s.click("Save")
        assert s.text_containing("note=") == "note=hi", s.describe()

    run(server, body)


@pytest.mark.releases
def test_fragment_click_is_a_fragment_run_and_keeps_the_body(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        fragment_id = s.widget_fragment_id("Frag increment")
        assert fragment_id, "the fragment's button should carry delta.fragment_id"
        assert s.widget_fragment_id("Increment") == ""
        rec = await s.click("Frag increment")
        assert rec is not None
        assert rec.kind == "fragment", s.describe()
        assert rec.fragment_ids == (fragment_id,)
        assert rec.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"
        assert s.text_containing("frag_clicks=") == "frag_clicks=1"
        assert s.text_containing("frag_runs=") == "frag_runs=2"
        # The body did not run, and its elements were not dropped.
        assert s.text_containing("body_runs=") == "body_runs=1"
        texts = s.texts()
        for t in ("common=yes", "Harness home", "clicks=0", "hello=world", "note="):
            assert t in texts, s.describe()
        assert len(texts) == len(HOME_TEXTS)
        assert (s.full_runs, s.fragment_runs) == (1, 1)
        # A full run afterwards still renders the fragment (now touched by it).
        await s.click("Increment")
        assert s.text_containing("frag_clicks=") == "frag_clicks=1"
        assert s.text_containing("frag_runs=") == "frag_runs=3"

    run(server, body)


@pytest.mark.releases
def test_stale_elements_are_dropped_after_a_full_run(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        # Switching page replaces the page's elements: none of home's survive.
        await s.switch_page("Other")
        assert s.texts() == ["common=yes", "Other page", "other_clicks=0"], s.describe()
        assert {w.label for w in s.widgets()} == {"Other button"}

    run(server, body)


@pytest.mark.releases
def test_switch_page(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        pages = s.pages()
        assert [p.page_name for p in pages] == ["Home", "Other"]
        home, other = pages
        assert home.is_default and s.page_script_hash == home.page_script_hash
        await s.click("Increment")
        await s.switch_page("other")  # by url_pathname
        assert s.page_script_hash == other.page_script_hash
        assert s.current_page() == other
        await s.click("Other button")
        assert s.text_containing("other_clicks=") == "other_clicks=1", s.describe()
        await s.switch_page(home.page_script_hash)  # by hash
        assert s.page_script_hash == home.page_script_hash
        # session_state survives page changes; widget values reset (as in Streamlit).
        assert s.text_containing("clicks=") == "clicks=1"
        assert s.text_containing("hello=") == "hello=world"

    run(server, body)


@pytest.mark.releases
def test_initial_page_from_url_path(server: StreamlitServer) -> None:
    async def main() -> None:
        async with StreamlitSession(server, page="other", timeout=TIMEOUT) as s:
            assert s.text_containing("Other page") == "Other page", s.describe()
            assert s.current_page() is not None
            assert s.current_page().page_name == "Other"  # type: ignore[union-attr]

    asyncio.run(main())


def test_twenty_concurrent_sessions_each_click_three_times(server: StreamlitServer) -> None:
    async def main() -> None:
        sessions = await run_sessions(server, 20, timeout=TIMEOUT, connect_timeout=TIMEOUT)
        try:
            assert len({s.session_id for s in sessions}) == 20

            async def clicker(s: StreamlitSession) -> None:
                for _ in range(3):
                    await s.click("Increment")

            await asyncio.gather(*(clicker(s) for s in sessions))
            for s in sessions:
                assert s.text_containing("clicks=") == "clicks=3", s.describe()
                assert s.full_runs == 4, s.describe()
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    asyncio.run(main())


def test_wait_timeout_error_shows_the_session(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await s.wait_until(lambda: False, timeout=0.3, what="the impossible")
        assert time.monotonic() - t0 < 10
        message = str(info.value)
        assert "the impossible" in message
        assert "clicks=0" in message  # the texts
        assert "FINISHED_SUCCESSFULLY" in message  # the run log
        with pytest.raises(LookupError, match="no widget"):
            await s.click("No such button")

    run(server, body)


def test_wait_until_accepts_session_predicates(server: StreamlitServer) -> None:
    async def body(s: StreamlitSession) -> None:
        await s.click("Increment", wait=False)
        await s.wait_until(lambda sess: sess.text_containing("clicks=1") is not None, timeout=TIMEOUT)
        await s.wait_idle()
        await s.wait_for_runs(2)
        assert await s.wait_for_text("clicks=1") == "clicks=1"

    run(server, body)


def test_server_start_failure_reports_the_log() -> None:
    with pytest.raises(ServerStartError, match=r"exited with code") as info:
        StreamlitServer(HARNESS_APP, options={"no.suchOption": "1"}, startup_timeout=TIMEOUT).start()
    assert "No such option" in str(info.value)  # the log tail, not just our message


@pytest.mark.browser
@pytest.mark.releases
def test_chromium_renders_the_app(server: StreamlitServer) -> None:
    """The Playwright launcher works with Debian's chromium (no download)."""
    assert chromium_path()
    timeout_ms = TIMEOUT * 1000
    with sync_chromium() as browser:
        page = browser.new_page()
        page.goto(server.url, timeout=timeout_ms)
        wait_for_app_idle(page, timeout_ms)
        page.get_by_text("clicks=0", exact=True).wait_for(timeout=timeout_ms)
        # Scoped to st.button: number_input's "+" is also a button named "Increment".
        page.get_by_test_id("stButton").get_by_role("button", name="Increment", exact=True).click()
        page.get_by_text("clicks=1", exact=True).wait_for(timeout=timeout_ms)
        wait_for_app_idle(page, timeout_ms)
        page.close()
