"""Who is here against real ``streamlit run`` servers, driven by the headless
client: two sessions in a room see each other, a closed tab leaves the other's
list within the stated time, and a replica killed with SIGKILL leaves the other
replica's list within its lease time.

Runs are counted per session and asserted exactly; ``wait_quiet`` only asserts
that nothing more happens after the awaited effect (no rerun loop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from harness import StreamlitServer, StreamlitSession, start_all

if TYPE_CHECKING:
    from redis_support import RedisServer

pytestmark = pytest.mark.server

APP = Path(__file__).resolve().parent / "apps" / "presence_app.py"
QUIET = 0.8  # seconds of silence that count as "nothing more happens"
CLOSED_TAB_LEAVES = 5.0  # seconds: what docs/api.md "Who is here" states
LEASE = 2.0  # SERVER_STATE_LEASE_TTL of the replicas below


def here(session: StreamlitSession) -> str | None:
    text = session.text_containing("here: ")
    return None if text is None else text.split("here: ", 1)[1]


async def join(server: StreamlitServer, name: str) -> StreamlitSession:
    return await StreamlitSession(server, query_string=f"name={name}", name=name).connect()


@pytest.fixture
def server() -> Iterator[StreamlitServer]:
    with StreamlitServer(APP) as s:
        yield s


@pytest.mark.releases
def test_two_tabs_see_each_other_and_a_closed_one_leaves(server: StreamlitServer) -> None:
    async def scenario() -> None:
        a = await join(server, "Ada")
        assert here(a) == "Ada (me)"
        b = await join(server, "Bob")
        try:
            await a.wait_until(lambda: here(a) == "Ada (me), Bob", what="A sees B join")
            assert here(b) == "Ada, Bob (me)"
            await asyncio.gather(a.wait_quiet(QUIET), b.wait_quiet(QUIET))
            # A: its first run, and one pushed rerun for B's join. B: its first run
            # only (it read the room after joining it). Joining again on each run
            # commits nothing, so nothing loops.
            assert (a.runs_started, b.runs_started) == (2, 1)
            closed = time.monotonic()
            await b.close()
            await a.wait_until(lambda: here(a) == "Ada (me)", timeout=30, what="A sees B leave")
            left = time.monotonic() - closed
            await a.wait_quiet(QUIET)
            assert a.runs_started == 3, a.describe()  # one rerun for the leave
            assert left < CLOSED_TAB_LEAVES, f"the closed tab left after {left:.2f} s"
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_a_killed_replicas_sessions_leave_the_other_replicas_list(redis_server: RedisServer) -> None:
    namespace = f"presence-{uuid.uuid4().hex[:8]}"

    def env(name: str) -> dict[str, str]:
        return {
            "SERVER_STATE_URL": redis_server.url,
            "SERVER_STATE_NAMESPACE": namespace,
            "SERVER_STATE_REPLICA": name,
            "SERVER_STATE_LEASE_TTL": str(LEASE),
        }

    one, two = StreamlitServer(APP, env=env("one")), StreamlitServer(APP, env=env("two"))
    start_all([one, two])
    try:

        async def scenario() -> None:
            a = await join(one, "Ada")
            b = await join(two, "Bob")
            c = await join(two, "Cy")
            try:
                await a.wait_until(lambda: here(a) == "Ada (me), Bob, Cy", what="A sees the other replica's")
                await c.wait_until(lambda: here(c) == "Ada, Bob, Cy (me)", what="C sees A")
                await a.wait_quiet(QUIET)
                runs = a.runs_started
                assert two.pid is not None
                killed = time.monotonic()
                os.kill(two.pid, signal.SIGKILL)
                await a.wait_until(lambda: here(a) == "Ada (me)", timeout=30, what="A sees them leave")
                gone = time.monotonic() - killed
                await a.wait_quiet(QUIET)
                # Both members went in one commit: one rerun.
                assert a.runs_started == runs + 1, a.describe()
                # The heartbeat's idle lifetime is the lease, refreshed every third of it: it
                # ends within LEASE of the kill; then one commit and one rerun.
                assert gone < LEASE + 1.5, f"the killed replica's sessions left after {gone:.2f} s"
            finally:
                for s in (a, b, c):
                    await s.close()

        asyncio.run(scenario())
    finally:
        one.stop()
        two.stop()
