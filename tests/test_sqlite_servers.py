"""The SQLite backend (``SERVER_STATE_URL=sqlite:////abs/path.db``) under
real ``streamlit run`` servers, driven by the headless client.

1. A server killed with SIGKILL right after its writes returned: a server
   started on the same file shows every value, each key's version and the
   history as they were (``tests/apps/durable_app.py``).
2. Two servers on one file are replicas: a write in one reruns exactly once
   each session of the other that shows the key, only the fragment when only
   a fragment read it, and nobody that does not show it
   (``tests/apps/replica_app.py``, as tests/test_replicas.py runs it on Redis).
3. The seed counter (``examples/global_counter.py``) clicked at once in
   sessions of two servers on one file loses no click: its
   ``server_state_lock`` is a lease in the file.

As in tests/test_replicas.py, run counts are exact per session per action;
``wait_quiet`` only asserts that nothing more happens after the awaited
effect. The servers import this checkout's ``server_state`` (``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from harness import LogWatch, StreamlitServer, StreamlitSession, start_all

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
QUIET = 0.8  # seconds of silence that count as "nothing more happens"
QUIET_TIMEOUT = 15.0  # a session still busy after this is rerunning without end
COUNT_RE = re.compile(r"Count =\s+`(-?\d+)`")


def sqlite_env(path: Path, **extra: str) -> dict[str, str]:
    """The servers' environment: the state in ``path``, this checkout's package first."""
    assert path.is_absolute()
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {
        "SERVER_STATE_URL": f"sqlite:///{path}",
        "SERVER_STATE_RUN_WAIT_LIMIT": "60",
        "PYTHONPATH": pythonpath,
        **extra,
    }


async def connect(server: StreamlitServer, name: str, **query: str) -> StreamlitSession:
    return await StreamlitSession(server, name=name, query_string=urlencode(query)).connect()


async def close_all(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.close() for s in sessions))


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET, timeout=QUIET_TIMEOUT) for s in sessions))


def runs(*sessions: StreamlitSession) -> list[int]:
    return [s.runs_started for s in sessions]


def delta(before: list[int], *sessions: StreamlitSession) -> list[int]:
    return [x - y for x, y in zip(runs(*sessions), before, strict=True)]


def number_after(session: StreamlitSession, prefix: str) -> int:
    """The number after ``prefix`` in the first visible text that starts with it."""
    for text in session.texts():
        if text.startswith(prefix):
            return int(text[len(prefix) :].split()[0])
    raise AssertionError(f"no text {prefix!r}\n{session.describe()}")


def shows(session: StreamlitSession, value: int) -> bool:
    return session.text_containing("value=") == f"value={value}"


# -- 1. a restart after SIGKILL brings back every value, version and the history ----------------


def state_lines(session: StreamlitSession, prefix: str) -> list[str]:
    """What durable_app.py shows of the state: the keys and the history."""
    return [t for t in session.texts() if t.startswith((f"{prefix}.", "commit seq="))]


def shown(session: StreamlitSession, key: str) -> tuple[str, int]:
    """``key``'s value (as durable_app.py describes it) and version."""
    for text in session.texts():
        if text.startswith(f"{key}="):
            value, _, version = text[len(key) + 1 :].rpartition(" version=")
            return value, int(version)
    raise AssertionError(f"{key} not shown\n{session.describe()}")


def history_seqs(session: StreamlitSession) -> list[int]:
    return [int(t.split()[1].removeprefix("seq=")) for t in session.texts() if t.startswith("commit seq=")]


def test_a_server_killed_after_its_writes_is_restarted_with_every_value_version_and_commit(
    tmp_path: Path,
) -> None:
    """W writes an int (three clicks), a list of 70 chat messages and two
    appends (kept item by item: the log carries patches), a tz-aware datetime
    and a DataFrame in one commit, then deletes a key and adds 1 again: nine
    commits, seq 1..9 on a new file. O, another session, follows. The server
    is killed (SIGKILL) as soon as W's last click run ended; a new server on
    the file shows a new session exactly what O showed: values, versions
    (the deleted key's too) and the nine commits with their values before
    and after. The next commit is seq 10."""
    env = sqlite_env(tmp_path / "state.db")
    app = APPS / "durable_app.py"
    p = "r1"
    clicks = ["Increment"] * 3 + ["Fill chat", "Say", "Say", "Stamp", "Drop", "Increment"]
    before: list[str] = []

    first = StreamlitServer(app, env=env).start()
    logs = LogWatch(first)

    async def write() -> None:
        w = await connect(first, "W", k=p)
        o = await connect(first, "O", k=p)
        try:
            for label in clicks:
                await w.click(label)
            # O shows what W shows (it was rerun for each commit).
            await o.wait_until(lambda: state_lines(o, p) == state_lines(w, p), what="O shows W's state")
            before.extend(state_lines(w, p))
            logs.assert_clean()
            assert first.pid is not None
            os.kill(first.pid, signal.SIGKILL)  # by its PID, the sessions still open
        finally:
            await close_all(w, o)

    try:
        asyncio.run(write())
    finally:
        first.stop()

    async def read(second: StreamlitServer) -> None:
        n = await connect(second, "N", k=p)
        try:
            await n.wait_quiet(QUIET, timeout=QUIET_TIMEOUT)
            assert n.runs_started == 1
            assert state_lines(n, p) == before, "\n".join(["before:", *before, "after:", *state_lines(n, p)])
            # And what that is, to the letter where it is short.
            assert shown(n, f"{p}.count") == ("4", 9)
            chat, chat_version = shown(n, f"{p}.chat")
            assert (
                chat_version == 6 and chat.count("'role'") == 72 and chat.endswith("'text': 'message 71'}]")
            )
            assert shown(n, f"{p}.when") == (
                "datetime.datetime(2026, 3, 29, 3, 30, 15, 123456, tzinfo=zoneinfo.ZoneInfo(key='Europe/Paris'))",
                7,
            )
            table, table_version = shown(n, f"{p}.table")
            assert table_version == 7
            assert table.startswith("DataFrame[n:int64,x:float64,name:") and re.search(
                r",at:datetime64\[\w+, Europe/Paris\]\] ", table
            )
            assert shown(n, f"{p}.gone") == ("None", 8)  # deleted: the version of its delete
            assert history_seqs(n) == list(range(9, 0, -1))
            # The file goes on where it stopped.
            await n.click("Increment")
            assert shown(n, f"{p}.count") == ("5", 10)
            assert history_seqs(n) == list(range(10, 0, -1))
        finally:
            await n.close()

    with StreamlitServer(app, env=env) as second:
        logs = LogWatch(second)
        asyncio.run(read(second))
        logs.assert_clean()


# -- 2. two servers on one file rerun each other's sessions as replicas do ----------------------


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StreamlitServer, StreamlitServer]]:
    """Two servers of replica_app.py on one SQLite file."""
    path = tmp_path_factory.mktemp("sqlite-replicas") / "state.db"
    env = sqlite_env(path, REPLICA_GATE_DIR=str(path.parent))
    r1, r2 = start_all([StreamlitServer(APPS / "replica_app.py", env=env) for _ in range(2)])
    try:
        yield r1, r2
    finally:
        r1.stop()
        r2.stop()


def test_a_write_in_one_server_reruns_exactly_the_sessions_of_the_other_that_show_the_key(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    r1, r2 = replicas
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        a = await connect(r1, "A@1", k="s2")
        d = await connect(r1, "D@1", k="s2")
        b = await connect(r2, "B@2", k="s2")
        c = await connect(r2, "C@2 shows nothing", k="s2", read="none")
        everyone = (a, d, b, c)
        try:
            await quiet(*everyone)
            assert [number_after(s, "value=") for s in (a, d, b)] == [0, 0, 0]
            for n, writer in enumerate((a, b, a, b), start=1):
                before = runs(*everyone)
                await writer.click("Write")
                for s in (a, d, b):
                    await s.wait_until(lambda s=s, n=n: shows(s, n), what=f"value={n}")
                await quiet(*everyone)
                # The writer: its click run (it read the value its callback
                # wrote); the others that show the key, on either server: one
                # pushed rerun; C, which shows nothing: none.
                assert delta(before, *everyone) == [1, 1, 1, 0], (
                    n,
                    writer.name,
                    [s.describe() for s in everyone],
                )
                assert all(s.runs[-1].completed for s in everyone)
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


def test_a_key_read_only_in_a_fragment_of_the_other_server_reruns_only_that_fragment(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    r1, r2 = replicas
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        a = await connect(r1, "A@1", k="s2f")
        f = await connect(r2, "F@2 fragment", k="s2f", read="fragment")
        g = await connect(r2, "G@2 body", k="s2f")
        everyone = (a, f, g)
        try:
            await quiet(*everyone)
            for n in (1, 2):
                before = runs(*everyone)
                f_full, g_full = f.full_runs, g.full_runs
                await a.click("Write")
                await f.wait_until(lambda n=n: shows(f, n), what=f"F's fragment shows value={n}")
                await g.wait_until(lambda n=n: shows(g, n), what=f"G shows value={n}")
                await quiet(*everyone)
                assert delta(before, *everyone) == [1, 1, 1], [s.describe() for s in everyone]
                # F: one fragment run, its body neither rerun nor lost.
                assert f.runs[-1].kind == "fragment" and f.runs[-1].completed, f.describe()
                assert f.full_runs == f_full and number_after(f, "runs=") == 1, f.describe()
                assert number_after(f, "fragment_runs=") == 1 + n, f.describe()
                assert f.text_containing("clicks=0") is not None, f.describe()
                # G read it in its body: a full rerun.
                assert g.runs[-1].kind == "full" and g.full_runs == g_full + 1, g.describe()
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


# -- 3. the seed counter and its lock, clicked at once in two servers on one file ---------------


def shown_count(session: StreamlitSession) -> int | None:
    """The count the seed counter shows; None while a run has not drawn it yet."""
    text = session.text_containing("Count =")
    match = COUNT_RE.search(text) if text is not None else None
    return int(match.group(1)) if match is not None else None


def test_the_seed_counter_clicked_at_once_in_two_servers_on_one_file_loses_no_click(tmp_path: Path) -> None:
    """Four sessions, two on each server, click "Increment" at the same
    instant, four rounds: each click takes the key's lease in the file
    against the three others; every session shows every click after each
    round. One click per session per round, the next round once the count
    shows this one's (see tests/test_replicas.py: a second click sent while
    the first one's run has not started would stop it, on one server too)."""
    rounds = 4
    env = sqlite_env(tmp_path / "counter.db")
    servers = start_all([StreamlitServer(ROOT / "examples" / "global_counter.py", env=env) for _ in range(2)])
    logs = LogWatch(*servers)

    async def scenario() -> None:
        sessions = [
            await StreamlitSession(server, name=f"{j}@{i}").connect()
            for i, server in enumerate(servers, 1)
            for j in range(2)
        ]
        try:
            await quiet(*sessions)
            assert [shown_count(s) for s in sessions] == [0] * len(sessions)
            for done in range(1, rounds + 1):
                await asyncio.gather(*(s.click("Increment") for s in sessions))
                total = done * len(sessions)
                for s in sessions:
                    await s.wait_until(lambda s=s, t=total: shown_count(s) == t, what=f"Count = {total}")
            await quiet(*sessions)
            assert [shown_count(s) for s in sessions] == [rounds * len(sessions)] * len(sessions)
            # A new session on each server reads the same count from its mirror.
            for i, server in enumerate(servers, 1):
                async with StreamlitSession(server, name=f"probe@{i}") as probe:
                    assert shown_count(probe) == rounds * len(sessions)
        finally:
            await close_all(*sessions)

    try:
        asyncio.run(scenario())
        logs.assert_clean()
    finally:
        for server in servers:
            server.stop()
