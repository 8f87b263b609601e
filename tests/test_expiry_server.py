"""Keys that expire, on a real `streamlit run` server with the headless
client: the expiry is a commit like any other, so every session that shows
the key reruns exactly once and shows it gone; a session that wrote it too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import StreamlitServer, StreamlitSession, run_sessions

pytestmark = pytest.mark.server

APP = Path(__file__).resolve().parent / "apps" / "expiry_app.py"
QUIET = 0.8


@pytest.fixture(scope="module")
def server() -> Iterator[StreamlitServer]:
    with StreamlitServer(APP) as server:
        yield server


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET, timeout=15) for s in sessions))


def test_an_expiry_reruns_every_session_that_shows_the_key_once(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            assert b.text_containing("typing=nobody") is not None
            a_before, b_before = a.runs_started, b.runs_started
            await a.click("Type")
            await b.wait_until(lambda: b.text_containing("typing=Ann") is not None, what="B sees Ann typing")
            await quiet(a, b)
            a_typed, b_typed = a.runs_started, b.runs_started
            # The click: A's run (it writes before it reads the key); B once.
            assert (a_typed - a_before, b_typed - b_before) == (1, 1)
            assert a.text_containing("typing=Ann") is not None
            # The key lives three seconds after its change: then both pages show it gone.
            await b.wait_until(
                lambda: b.text_containing("typing=nobody") is not None, timeout=15, what="B sees it expire"
            )
            await a.wait_until(
                lambda: a.text_containing("typing=nobody") is not None, timeout=15, what="A sees it expire"
            )
            await quiet(a, b)
            # The expiry: one rerun each, nothing more.
            assert (a.runs_started - a_typed, b.runs_started - b_typed) == (1, 1)
        finally:
            await asyncio.gather(a.close(), b.close())

    asyncio.run(scenario())
