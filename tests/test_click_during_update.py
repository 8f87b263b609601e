"""A click that arrives while the session's previous click is still in its
``update``: with ``runner.fastReruns`` (Streamlit's default) the second click
stops the first runner and runs its callback at once in another thread, and
the first callback stops at its next ``st.session_state`` access. Nothing is
lost in the state (the update is never cut in half) and, when the callback
takes its number before the update as docs/reruns.md advises, both clicks post a
message of their own."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from harness import StreamlitServer, StreamlitSession

pytestmark = [pytest.mark.server, pytest.mark.releases]

APPS = Path(__file__).resolve().parent / "apps"


def test_a_second_click_during_the_first_clicks_update_posts_a_message_of_its_own(tmp_path: Path) -> None:
    async def entered(n: int) -> None:
        deadline = time.monotonic() + 30
        while not (tmp_path / f"entered-{n}").exists():  # the callbacks run in the server process
            assert time.monotonic() < deadline, f"callback {n} never ran"
            await asyncio.sleep(0.01)

    async def scenario(server: StreamlitServer) -> None:
        async with StreamlitSession(server) as s:
            await s.click("Post", wait=False)
            await entered(1)  # the first update is in flight, held open
            await s.click("Post", wait=False)
            await entered(2)
            (tmp_path / "open").touch()
            await s.wait_until(
                lambda: "chat=[1, 2]" in s.texts() and not s.run_in_progress, what="both posts"
            )
            assert s.texts() == ["chat=[1, 2]", "posted=2"], s.describe()
            await s.wait_quiet(0.8)
            assert s.texts() == ["chat=[1, 2]", "posted=2"], s.describe()

    with StreamlitServer(APPS / "double_click_app.py", env={"DOUBLE_DIR": str(tmp_path)}) as server:
        asyncio.run(scenario(server))
