"""Reruns under the conditions that once broke them, against real
``streamlit run`` servers on 127.0.0.1 driven by the headless client.

- a page that ends in ``st.stop()`` after reading a key (a login gate);
- a session rerun again and again for one change (a snapshot kept across runs);
- a session whose runs take longer than the scheduler's wait limit;
- tabs that close (and one that reconnects) while nothing is written.

Like tests/test_sessions.py, each test counts runs per session per action and
asserts exact numbers; ``wait_quiet`` (silence for a while) only asserts that
nothing more happens after the awaited effect.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from harness import StreamlitServer, StreamlitSession, run_sessions

pytestmark = pytest.mark.server

APPS = Path(__file__).resolve().parent / "apps"
QUIET = 0.8  # seconds of silence that count as "nothing more happens"
QUIET_TIMEOUT = 10.0  # a session still busy after this is rerunning without end

# The scheduler's wait limit for the slow-page tests (SERVER_STATE_RUN_WAIT_LIMIT),
# and how long each run of the slow page takes: longer than the limit.
WAIT_LIMIT = 1.0
SLOW = 2.0


def shown_after(session: StreamlitSession, prefix: str) -> str | None:
    """The text after ``prefix`` in the first visible text that contains it;
    None if none does. For ``wait_until`` predicates, evaluated after every
    message, mid-run included, when a page may not show it (yet)."""
    text = session.text_containing(prefix)
    return None if text is None else text.split(prefix, 1)[1].split()[0]


def value_after(session: StreamlitSession, prefix: str) -> str:
    """``shown_after``, asserting the page shows it (for checks once quiet)."""
    value = shown_after(session, prefix)
    assert value is not None, session.describe()
    return value


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET, timeout=QUIET_TIMEOUT) for s in sessions))


# -- A: st.stop() after reading a key -----------------------------------------------


@pytest.mark.parametrize("fast_reruns", ["true", "false"])
@pytest.mark.releases
def test_page_that_stops_early_reruns_each_tab_once_per_click(fast_reruns: str) -> None:
    async def scenario(server: StreamlitServer) -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            assert a.text_containing("members only") is not None  # every run ends in st.stop()
            for clicks in range(1, 4):
                start = int(value_after(b, "posts="))
                a_before, b_before = a.runs_started, b.runs_started
                await a.click("Post")
                await b.wait_until(
                    lambda start=start: shown_after(b, "posts=") == str(start + 1), what="B shows the post"
                )
                await quiet(a, b)
                # A: its click run only (written in a callback, read afterwards).
                assert a.runs_started - a_before == 1, (clicks, a.describe())
                # B: one pushed rerun.
                assert b.runs_started - b_before == 1, (clicks, b.describe())
                assert value_after(a, "posts=") == str(start + 1)
            log = server.log_text()
            assert "rerun loop" not in log and "stopped rerunning" not in log, log[-3000:]
        finally:
            await asyncio.gather(a.close(), b.close())

    with StreamlitServer(APPS / "gate_app.py", options={"runner.fastReruns": fast_reruns}) as server:
        asyncio.run(scenario(server))


def test_member_view_behind_the_gate_still_follows_the_key() -> None:
    async def scenario(server: StreamlitServer) -> None:
        a, b = await run_sessions(server, 2)
        try:
            await b.click("Join")  # B gets past st.stop(): it reads "posts" twice
            await quiet(a, b)
            assert b.text_containing("member view") is not None, b.describe()
            start = int(value_after(b, "posts="))
            a_before, b_before = a.runs_started, b.runs_started
            await a.click("Post")
            await b.wait_until(
                lambda: shown_after(b, "member view: posts=") == str(start + 1), what="B's member view"
            )
            await quiet(a, b)
            assert (a.runs_started - a_before, b.runs_started - b_before) == (1, 1)
        finally:
            await asyncio.gather(a.close(), b.close())

    with StreamlitServer(APPS / "gate_app.py") as server:
        asyncio.run(scenario(server))


@pytest.mark.parametrize("fast_reruns", ["true", "false"])
def test_session_rerun_for_the_same_change_again_and_again_is_stopped(fast_reruns: str) -> None:
    """A snapshot kept in st.session_state shows the same old instant on every
    run: no rerun can bring the session up to date. Each session is rerun
    twice for the change (the second time in case the first was cut short),
    then left alone with a warning naming the key."""

    async def scenario(server: StreamlitServer) -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            a_before, b_before = a.runs_started, b.runs_started
            await a.click("Write")
            # Each rerun starts when the previous run ended: on a loaded machine
            # a gap may outlast QUIET, so wait for the runs, then for silence.
            await a.wait_until(lambda: a.runs_started - a_before >= 3, what="A's click run and two reruns")
            await b.wait_until(lambda: b.runs_started - b_before >= 2, what="B's two reruns")
            await quiet(a, b)
            # A: its click run, then two reruns at their ends; B: two pushed reruns.
            assert a.runs_started - a_before == 3, a.describe()
            assert b.runs_started - b_before == 2, b.describe()
            log = server.log_text()
            assert "stopped rerunning" in log and "'k'" in log, log[-3000:]
            # A new change is a new cause: the same again, no more.
            a_before, b_before = a.runs_started, b.runs_started
            await b.click("Write")
            await a.wait_until(lambda: a.runs_started - a_before >= 2, what="A's two reruns")
            await b.wait_until(lambda: b.runs_started - b_before >= 3, what="B's click run and two reruns")
            await quiet(a, b)
            assert a.runs_started - a_before == 2, a.describe()
            assert b.runs_started - b_before == 3, b.describe()
        finally:
            await asyncio.gather(a.close(), b.close())

    with StreamlitServer(APPS / "snapshot_app.py", options={"runner.fastReruns": fast_reruns}) as server:
        asyncio.run(scenario(server))


# -- B: a page slower than the wait limit ---------------------------------------------


def slow_server(fast_reruns: str) -> StreamlitServer:
    return StreamlitServer(
        APPS / "slow_app.py",
        options={"runner.fastReruns": fast_reruns},
        env={"SERVER_STATE_RUN_WAIT_LIMIT": str(WAIT_LIMIT)},
    )


async def start_slow_run(b: StreamlitSession) -> int:
    """Start a run of the slow session B; return its runs_started before it."""
    mark = b.runs_started
    await b.click("Refresh", wait=False)
    await b.wait_until(lambda: b.runs_started > mark and b.run_in_progress, what="B's slow run started")
    return mark


@pytest.mark.parametrize("fast_reruns", ["true", "false"])
def test_slow_run_that_reads_after_the_writes_shows_them_uninterrupted(fast_reruns: str) -> None:
    async def scenario(server: StreamlitServer) -> None:
        a = await StreamlitSession(server, name="A").connect()
        b = await StreamlitSession(server, name="B", query_string=f"slow={SLOW}").connect()
        try:
            await quiet(a, b)
            start = int(value_after(b, "v="))
            mark = await start_slow_run(b)
            began = time.monotonic()
            await a.click("Write")
            await a.click("Write")  # two writes while B's run sleeps, before it reads "v"
            await b.wait_until(
                lambda: shown_after(b, "v=") == str(start + 2),
                timeout=4 * SLOW + 5,
                what="B shows both writes",
            )
            shown_in = time.monotonic() - began
            await quiet(a, b)
            # The run that was going read the key after the writes: it shows
            # them itself, and is neither interrupted nor followed by a rerun.
            assert b.runs_started - mark == 1, b.describe()
            assert b.runs[-1].completed, b.describe()
            assert shown_in < SLOW + 1.0, shown_in
        finally:
            await asyncio.gather(a.close(), b.close())

    with slow_server(fast_reruns) as server:
        asyncio.run(scenario(server))


@pytest.mark.parametrize("fast_reruns", ["true", "false"])
def test_slow_run_that_showed_the_old_value_gets_one_rerun_and_converges(fast_reruns: str) -> None:
    async def scenario(server: StreamlitServer) -> None:
        a = await StreamlitSession(server, name="A").connect()
        b = await StreamlitSession(server, name="B", query_string=f"slow={SLOW}&read=first").connect()
        try:
            await quiet(a, b)
            start = int(value_after(b, "v="))
            mark = await start_slow_run(b)  # it shows "v" first, then sleeps
            began = time.monotonic()
            for _ in range(3):
                await a.click("Write")
            await b.wait_until(
                lambda: shown_after(b, "v=") == str(start + 3) and b.runs[-1].completed,
                timeout=4 * SLOW + 5,
                what="B's rerun finished showing the writes",
            )
            converged_after = time.monotonic() - began
            await asyncio.gather(
                a.wait_quiet(QUIET, timeout=QUIET_TIMEOUT),
                b.wait_quiet(WAIT_LIMIT + QUIET, timeout=QUIET_TIMEOUT),
            )
            # The run that showed the old value, then one rerun for the three
            # writes together; the rerun (begun after them) is never cut short.
            assert b.runs_started - mark == 2, b.describe()
            assert b.runs[-1].completed, b.describe()
            assert converged_after < WAIT_LIMIT + 2 * SLOW + 1.0, converged_after
        finally:
            await asyncio.gather(a.close(), b.close())

    with slow_server(fast_reruns) as server:
        asyncio.run(scenario(server))


# -- D: closed tabs ---------------------------------------------------------------------


@pytest.mark.releases
def test_closed_tabs_leave_the_counters_within_seconds_without_a_write() -> None:
    async def scenario(server: StreamlitServer) -> None:
        watcher = await StreamlitSession(server, name="watcher", auto_rerun=True).connect()
        others = await run_sessions(server, 20)
        try:
            await watcher.wait_for_text("sessions=21 bound=21", timeout=30)
            closed_at = time.monotonic()
            await asyncio.gather(*(s.close() for s in others))
            await watcher.wait_for_text("sessions=1 bound=1", timeout=15)
            took = time.monotonic() - closed_at
            assert took < 5.0, took
            print(f"\nstats back to the live count {took:.2f} s after 20 tabs closed")
        finally:
            await asyncio.gather(watcher.close(), *(s.close() for s in others))

    with StreamlitServer(APPS / "stats_app.py") as server:
        asyncio.run(scenario(server))


@pytest.mark.releases
def test_tab_that_reconnects_after_a_write_is_brought_up_to_date() -> None:
    """The browser reconnects to its session (a network blip) without asking
    for a run when none was going. A write made while it was away must still
    reach it: one pushed run, and none when nothing changed."""

    async def scenario(server: StreamlitServer) -> None:
        watcher = await StreamlitSession(server, name="watcher", auto_rerun=True).connect()
        b = await StreamlitSession(server, name="B").connect()
        resumed: list[StreamlitSession] = []
        try:
            await watcher.wait_for_text("sessions=2 bound=2")
            sid = b.session_id
            start = int(value_after(b, "k="))

            # Away and back with nothing written: no run.
            await b.close()
            await watcher.wait_for_text("sessions=1 bound=1")
            back = await StreamlitSession(server, name="B back", resume_session_id=sid).connect(rerun=False)
            resumed.append(back)
            await watcher.wait_for_text("sessions=2 bound=2")
            await back.wait_quiet(QUIET + 1.0, timeout=QUIET_TIMEOUT)
            assert back.runs_started == 0, back.describe()

            # Away, a write, back: exactly one pushed run, showing it.
            await back.close()
            await watcher.wait_for_text("sessions=1 bound=1")
            await watcher.click("Write")
            again = await StreamlitSession(server, name="B again", resume_session_id=sid).connect(rerun=False)
            resumed.append(again)
            await again.wait_until(
                lambda: again.text_containing(f"k={start + 1}") is not None, what="B shows the write"
            )
            await again.wait_quiet(QUIET, timeout=QUIET_TIMEOUT)
            assert again.runs_started == 1, again.describe()
            assert again.session_id == sid
        finally:
            await asyncio.gather(watcher.close(), b.close(), *(s.close() for s in resumed))

    with StreamlitServer(APPS / "stats_app.py") as server:
        asyncio.run(scenario(server))
