"""Tabs that outlive their server (docs/replicas.md, "Deploying behind a load
balancer"): a tab whose server went away reconnects to another replica or to
the restarted server, naming a session that server does not know. Streamlit
makes it a fresh session and, from 1.38 on, the browser asks it for no run;
server_state runs it once, spread over time when many arrive together, and
never twice (a tab that asks for a run itself, as 1.37's browser does, is not
run again).

The headless client plays the browser: ``resume_session_id`` is what the
browser sends when it reconnects, ``rerun=False`` its silence after it (1.38+),
``rerun=True`` 1.37's request. tests/test_browser_failover.py does the same
with Chromium behind nginx.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from harness import StreamlitServer, StreamlitSession, start_all

if TYPE_CHECKING:
    from redis_support import RedisServer

pytestmark = pytest.mark.server

APP = Path(__file__).resolve().parent / "apps" / "failover_app.py"
QUIET = 1.0  # longer than the reconnect grace (0.25 s) plus a run
QUIET_TIMEOUT = 30.0
COUNT_RE = re.compile(r"Count =\s+`(-?\d+)`")


def count_of(session: StreamlitSession) -> int | None:
    text = session.text_containing("Count =")
    match = COUNT_RE.search(text) if text is not None else None
    return int(match.group(1)) if match is not None else None


def replica_of(session: StreamlitSession) -> str | None:
    text = session.text_containing("replica=")
    return None if text is None else text.split()[0].removeprefix("replica=")


async def shows(session: StreamlitSession, count: int, replica: str | None = None) -> None:
    await session.wait_until(
        lambda: count_of(session) == count and (replica is None or replica_of(session) == replica),
        what=f"shows Count = {count}" + (f" from {replica}" if replica else ""),
    )


async def come_back(server: StreamlitServer, left: StreamlitSession, *, asks: bool) -> StreamlitSession:
    """The tab of ``left`` reconnecting to ``server``: it names its last
    session; ``asks`` is whether it asks for a run (1.37's browser) or not."""
    back = StreamlitSession(
        server, name=f"{left.name} back", resume_session_id=left.session_id, timeout=QUIET_TIMEOUT
    )
    return await back.connect(rerun=asks, wait=False)


def env(url: str, replica: str, namespace: str = "") -> dict[str, str]:
    out = {"SERVER_STATE_URL": url, "FAILOVER_REPLICA": replica}
    if namespace:
        out["SERVER_STATE_NAMESPACE"] = namespace
    return out


@pytest.mark.parametrize("backend", [pytest.param("memory", marks=pytest.mark.releases), "redis"])
def test_tabs_of_a_restarted_server_show_what_it_has_by_themselves(
    backend: str, redis_server: RedisServer
) -> None:
    """A server restarts (a redeploy, a crash) with two tabs open. Each tab
    reconnects to a server that has run no script yet; each runs exactly once
    by itself, whether it asks for a run or not, and shows the restarted
    server's count: 0 in memory (the state went with the process), the count
    kept in Redis. Then it follows changes as any tab does, and a new tab runs
    once."""
    url = "memory://" if backend == "memory" else redis_server.url
    namespace = f"restart-{uuid.uuid4().hex[:8]}"
    first = StreamlitServer(APP, env=env(url, "first", namespace)).start()
    port = first.port
    tabs: list[StreamlitSession] = []

    async def before() -> None:
        tabs.extend([await StreamlitSession(first, name=n).connect() for n in ("silent", "asking")])
        await tabs[0].click("Increment")
        await tabs[0].click("Increment")
        await shows(tabs[1], 2)
        await asyncio.gather(*(t.close() for t in tabs))

    async def after(server: StreamlitServer) -> None:
        expected = 0 if backend == "memory" else 2
        silent = await come_back(server, tabs[0], asks=False)
        asking = await come_back(server, tabs[1], asks=True)
        fresh: StreamlitSession | None = None
        try:
            await asyncio.gather(shows(silent, expected, "second"), shows(asking, expected, "second"))
            await asyncio.gather(silent.wait_quiet(QUIET), asking.wait_quiet(QUIET))
            assert [silent.runs_started, asking.runs_started] == [1, 1], silent.describe() + asking.describe()
            assert silent.session_id != tabs[0].session_id  # a new session: the old one went with the server

            fresh = await StreamlitSession(server, name="new tab").connect()
            await fresh.wait_quiet(QUIET)
            assert fresh.runs_started == 1  # a new tab names no session: not run again
            await fresh.click("Increment")
            await asyncio.gather(shows(silent, expected + 1), shows(asking, expected + 1))
            await asyncio.gather(silent.wait_quiet(QUIET), asking.wait_quiet(QUIET))
            assert [silent.runs_started, asking.runs_started] == [2, 2]
        finally:
            await asyncio.gather(silent.close(), asking.close(), *([fresh.close()] if fresh else []))

    try:
        asyncio.run(before())
    finally:
        first.stop()
    with StreamlitServer(APP, env=env(url, "second", namespace), port=port) as second:
        asyncio.run(after(second))


def test_a_hundred_tabs_of_a_stopped_replica_each_run_once_on_the_survivor(redis_server: RedisServer) -> None:
    """A replica with 100 tabs stops (a rolling deploy). Its tabs all land on
    the other replica at once: each runs exactly once and shows the current
    count, spread over time rather than all at once, and a later write reruns
    each of them once. The survivor's own tab is not rerun for their return."""
    namespace = f"failover-{uuid.uuid4().hex[:8]}"
    servers: Sequence[StreamlitServer] = start_all(
        [StreamlitServer(APP, env=env(redis_server.url, name, namespace)) for name in ("doomed", "survivor")]
    )
    doomed, survivor = servers
    n = 100

    async def scenario() -> None:
        own = await StreamlitSession(survivor, name="survivor's own").connect()
        left: list[StreamlitSession] = []
        back: list[StreamlitSession] = []
        try:
            for batch in range(0, n, 25):
                left += await asyncio.gather(
                    *(StreamlitSession(doomed, name=f"tab {i}").connect() for i in range(batch, batch + 25))
                )
            await own.click("Increment")
            await asyncio.gather(*(shows(t, 1) for t in left))
            await asyncio.gather(*(t.close() for t in left))
            await asyncio.to_thread(doomed.stop)
            await own.wait_quiet(QUIET)
            own_runs = own.runs_started

            start = time.monotonic()
            back += await asyncio.gather(*(come_back(survivor, t, asks=False) for t in left))
            reconnected = time.monotonic() - start
            await asyncio.gather(*(shows(t, 1, "survivor") for t in back))
            all_shown = time.monotonic() - start
            await asyncio.gather(*(t.wait_quiet(QUIET) for t in back))
            runs = [t.runs_started for t in back]
            assert runs == [1] * n, f"runs per returning tab: {sorted(set(runs))}"
            # Spread: not all in the first instant (RECONNECT_RATE, 50 a second).
            firsts = sorted(t.runs[0].started_at for t in back)
            assert firsts[-1] - firsts[0] >= (n - 1) / 50 * 0.9, "the returning tabs' runs were not spread"
            assert own.runs_started == own_runs
            print(
                f"\n100 tabs back on the survivor: reconnected in {reconnected:.2f} s, "
                f"all showing the count after {all_shown:.2f} s, {sum(runs)} runs"
            )

            await own.click("Increment")
            await asyncio.gather(*(shows(t, 2) for t in back))
            await asyncio.gather(*(t.wait_quiet(QUIET) for t in back))
            assert [t.runs_started for t in back] == [2] * n
        finally:
            await asyncio.gather(own.close(), *(t.close() for t in left + back))

    try:
        asyncio.run(scenario())
    finally:
        for server in servers:
            server.stop()
