"""Several ``streamlit run`` replicas sharing one state in Redis
(``SERVER_STATE_URL``), driven by the headless client.

Each replica is its own process with its own mirror; a write in one reruns
the sessions of the others that show the key, by the rules of one server
(docs/reruns.md): once per change, only the fragment when only
a fragment read it, never a run in progress, never a session that does not
show the key, nobody for a write inside ``with no_rerun:``, and rerun loops
stopped after the same number of rounds, the round being carried from
replica to replica.

Like tests/test_sessions.py, each test counts runs per session per action and
asserts exact numbers; ``wait_quiet`` (silence for a while) only asserts that
nothing more happens after the awaited effect. Two replicas of
``tests/apps/replica_app.py`` serve the whole module (each test uses keys of
its own), on the session's redis-server under a namespace of this module's;
the seed counter test starts three replicas of ``examples/global_counter.py``
of its own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest
from harness import LogWatch, StreamlitServer, StreamlitSession, start_all

if TYPE_CHECKING:
    from redis_support import RedisServer

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
APP = Path(__file__).resolve().parent / "apps" / "replica_app.py"
QUIET = 0.8  # seconds of silence that count as "nothing more happens"
QUIET_TIMEOUT = 15.0  # a session still busy after this is rerunning without end
# A run held open at a gate must not reach the scheduler's wait limit (after
# which a run that showed an old value may be interrupted): the tests here are
# about the time before it.
RUN_WAIT_LIMIT = "60"

COUNT_RE = re.compile(r"Count =\s+`(-?\d+)`")


# -- servers -----------------------------------------------------------------------


def replica_env(redis_server: RedisServer, namespace: str, **extra: str) -> dict[str, str]:
    return {
        "SERVER_STATE_URL": redis_server.url,
        "SERVER_STATE_NAMESPACE": namespace,
        "SERVER_STATE_RUN_WAIT_LIMIT": RUN_WAIT_LIMIT,
        **extra,
    }


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replica-gates")


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer, gate_dir: Path) -> Iterator[tuple[StreamlitServer, StreamlitServer]]:
    """Two replicas of replica_app.py sharing the session's redis-server."""
    env = replica_env(redis_server, f"replicas-{uuid.uuid4().hex[:8]}", REPLICA_GATE_DIR=str(gate_dir))
    r1, r2 = start_all([StreamlitServer(APP, env=env) for _ in range(2)])
    try:
        yield r1, r2
    finally:
        r1.stop()
        r2.stop()


# -- sessions ---------------------------------------------------------------------------


async def connect(server: StreamlitServer, name: str, **query: str) -> StreamlitSession:
    return await StreamlitSession(server, name=name, query_string=urlencode(query)).connect()


async def close_all(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.close() for s in sessions))


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET, timeout=QUIET_TIMEOUT) for s in sessions))


def number_after(session: StreamlitSession, prefix: str) -> int:
    """The number after ``prefix`` in the first visible text that starts with it."""
    for text in session.texts():
        if text.startswith(prefix):
            return int(text[len(prefix) :].split()[0])
    raise AssertionError(f"no text {prefix!r}\n{session.describe()}")


def value_of(session: StreamlitSession) -> int:
    return number_after(session, "value=")


def shows(session: StreamlitSession, value: int) -> bool:
    text = session.text_containing("value=")
    return text is not None and text == f"value={value}"


def shown_count(session: StreamlitSession) -> int | None:
    """The count the seed counter shows; None while a run has not drawn it yet."""
    text = session.text_containing("Count =")
    match = COUNT_RE.search(text) if text is not None else None
    return int(match.group(1)) if match is not None else None


def count_of(session: StreamlitSession) -> int:
    count = shown_count(session)
    assert count is not None, session.describe()
    return count


def runs(*sessions: StreamlitSession) -> list[int]:
    return [s.runs_started for s in sessions]


# -- 1. a write in one replica reruns exactly the bound sessions of the other ------------------


def test_a_write_in_one_replica_reruns_exactly_the_sessions_that_show_the_key(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    r1, r2 = replicas
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        a = await connect(r1, "A@1", k="t1")
        d = await connect(r1, "D@1", k="t1")
        b = await connect(r2, "B@2", k="t1")
        c = await connect(r2, "C@2 shows nothing", k="t1", read="none")
        everyone = (a, d, b, c)
        try:
            await quiet(*everyone)
            assert [value_of(s) for s in (a, d, b)] == [0, 0, 0]
            # Writers alternate between the replicas: A on 1, then B on 2.
            for n, writer in enumerate((a, b, a, b), start=1):
                before = runs(*everyone)
                await writer.click("Write")
                for s in (a, d, b):
                    await s.wait_until(lambda s=s, n=n: shows(s, n), what=f"value={n}")
                await quiet(*everyone)
                delta = [x - y for x, y in zip(runs(*everyone), before, strict=True)]
                # Every session that shows the key: one run (the writer's own
                # click run, which read the value after its callback wrote it;
                # the others one pushed rerun each, on both replicas). C, which
                # shows nothing, none.
                assert delta == [1, 1, 1, 0], (n, writer.name, delta, [s.describe() for s in everyone])
                assert all(s.runs[-1].completed for s in everyone)
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


def test_a_key_read_only_in_a_fragment_of_the_other_replica_reruns_only_that_fragment(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    r1, r2 = replicas
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        a = await connect(r1, "A@1", k="t1f")
        f = await connect(r2, "F@2 fragment", k="t1f", read="fragment")
        g = await connect(r2, "G@2 body", k="t1f")
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
                assert [x - y for x, y in zip(runs(*everyone), before, strict=True)] == [1, 1, 1]
                # F: one fragment run, the body untouched and still shown.
                assert f.runs[-1].kind == "fragment" and f.runs[-1].completed, f.describe()
                assert f.full_runs == f_full
                assert number_after(f, "runs=") == 1, f.describe()  # the body ran once, at connect
                assert number_after(f, "fragment_runs=") == 1 + n, f.describe()
                assert f.text_containing("clicks=0") is not None, f.describe()  # body element kept
                # G read it in its body: a full rerun.
                assert g.runs[-1].kind == "full" and g.full_runs == g_full + 1, g.describe()
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


async def counter_report(
    redis_server: RedisServer,
    namespace: str,
    servers: Sequence[StreamlitServer],
    sessions: Sequence[StreamlitSession],
) -> str:
    """Where the counter stands: each session, a new session on each replica
    (what its mirror holds now), and Redis itself."""
    from server_state.backends._codec import make_codec

    lines = [f"{s.name}: Count={shown_count(s)} runs={s.runs_started} last={s.current_run}" for s in sessions]
    for i, server in enumerate(servers, start=1):
        async with StreamlitSession(server, name=f"probe@{i}") as probe:
            lines.append(f"a new session on replica {i}: Count={count_of(probe)}")
    client = redis_server.client()
    tag = "{ss:" + namespace + "}"
    payload = client.hget(f"{tag}:data", "count")
    value = make_codec().decode("count", payload) if payload is not None else None
    meta = client.hgetall(f"{tag}:meta")
    lines.append(f"Redis: count={value!r} version={client.hget(f'{tag}:ver', 'count')!r} meta={meta!r}")
    lines.append(f"Redis: stream length={client.xlen(f'{tag}:log')} leases={client.keys(f'{tag}:lease:*')!r}")
    for i, server in enumerate(servers, start=1):
        lines.append(f"--- replica {i} log tail ---\n{server.log_tail(40)}")
    return "\n".join(lines)


# -- 2. the seed counter and its lock, clicked in three replicas at once -----------------------


def test_the_seed_counter_clicked_concurrently_in_three_replicas_loses_no_click(
    redis_server: RedisServer,
) -> None:
    """Six sessions, two on each of three replicas, click "Increment" at the
    same instant, five times over: each click takes the key's lease in Redis
    against the five others. Every click counts, and every session shows the
    count after each round.

    Each session clicks once per round, the next round once the count shows
    every click of this one: the harness's ``click()`` may return on a pushed
    rerun that started just before the server took the click, and a second
    click sent then would stop the session's own click run (fastReruns), whose
    one-shot trigger is then gone before the button reads it. That loses a
    click on one server too; it is the clicker's doing, not the state's."""
    rounds = 5
    namespace = f"counter-{uuid.uuid4().hex[:8]}"
    env = replica_env(redis_server, namespace)
    servers = start_all([StreamlitServer(EXAMPLES / "global_counter.py", env=env) for _ in range(3)])
    logs = LogWatch(*servers)

    async def scenario() -> None:
        sessions: list[StreamlitSession] = []
        try:
            for i, server in enumerate(servers, start=1):
                for j in range(2):
                    sessions.append(await StreamlitSession(server, name=f"{j}@{i}").connect())
            await quiet(*sessions)
            assert [count_of(s) for s in sessions] == [0] * len(sessions)
            for done in range(1, rounds + 1):
                await asyncio.gather(*(s.click("Increment") for s in sessions))
                total = done * len(sessions)
                try:
                    for s in sessions:
                        await s.wait_until(lambda s=s, t=total: shown_count(s) == t, what=f"Count = {total}")
                except TimeoutError as exc:
                    pytest.fail(f"{exc}\n{await counter_report(redis_server, namespace, servers, sessions)}")
            await quiet(*sessions)
            assert [count_of(s) for s in sessions] == [rounds * len(sessions)] * len(sessions)
        finally:
            await close_all(*sessions)

    try:
        asyncio.run(scenario())
        logs.assert_clean()
    finally:
        for server in servers:
            server.stop()


# -- 3. rerun loops across replicas -------------------------------------------------------------


@pytest.mark.parametrize("placement", ["one replica", "two replicas"])
def test_a_ping_pong_between_replicas_is_stopped_after_the_same_rounds_as_on_one(
    replicas: tuple[StreamlitServer, StreamlitServer], placement: str
) -> None:
    """A reads ``x.b`` and writes ``x.a``; B reads ``x.a`` and writes ``x.b``:
    each write reruns the other. Neither reads what it writes, so only the
    round carried by each commit can stop them; across replicas it travels
    through Redis. B's first run (a page load, round 0) starts it; pushed
    reruns 1..10 run, the 11th is refused: A reruns in rounds 1, 3, 5, 7, 9,
    B in 2, 4, 6, 8, 10."""
    r1, r2 = replicas
    logs = LogWatch(r1, r2)
    key = "pp1" if placement == "one replica" else "pp2"
    server_b = r1 if placement == "one replica" else r2

    async def scenario() -> None:
        a = await connect(r1, "A@1", k=key, pingpong="a", read="none")
        await a.wait_quiet(QUIET)
        assert number_after(a, "seen=") == 0  # nobody else yet: A wrote x.a = 1
        b = await connect(server_b, f"B@{'1' if server_b is r1 else '2'}", k=key, pingpong="b", read="none")
        try:
            await quiet(a, b)  # raises if they are still rerunning each other
            assert (a.runs_started, b.runs_started) == (6, 6), (a.describe(), b.describe())
            assert all(r.completed for r in a.runs + b.runs), (a.describe(), b.describe())
            # A's last run (round 9) saw x.b = 10 and wrote x.a = 11; B's (round 10)
            # saw that and wrote x.b = 12, for which A was not rerun.
            assert (number_after(a, "seen="), number_after(b, "seen=")) == (10, 11)
        finally:
            await close_all(a, b)

    asyncio.run(scenario())
    log = logs.text()
    assert log.count("stopped a rerun loop") == 1, log[-4000:]
    assert f"'{key}.a'" in log and f"'{key}.b'" in log, log[-4000:]
    logs.assert_clean()


def test_the_loop_app_in_two_replicas_is_stopped_and_reported_with_its_key(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    """tests/apps/loop_app.py's script (read a key, write it + 1, every run),
    one session in each replica, asserted as the one-server test asserts it."""
    r1, r2 = replicas
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        a = await connect(r1, "A@1", k="stamp3", pingpong="self", read="none")
        b = await connect(r2, "B@2", k="stamp3", pingpong="self", read="none")
        try:
            await quiet(a, b)  # raises if they are still rerunning each other
            total = a.runs_started + b.runs_started
            # Ten rounds of pushed reruns, each rerunning at most both sessions,
            # at most twice (once for the other's write, once for its own).
            assert total <= 2 * 2 * 11, (a.describe(), b.describe())
        finally:
            await close_all(a, b)

    asyncio.run(scenario())
    log = logs.text()
    assert "stopped a rerun loop" in log and "'stamp3'" in log, log[-4000:]
    logs.assert_clean()


# -- 4. no_rerun across replicas ------------------------------------------------------------------


def test_a_write_inside_no_rerun_in_one_replica_reruns_nobody_in_the_other(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    r1, r2 = replicas
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        a = await connect(r1, "A@1", k="t4")
        d = await connect(r1, "D@1", k="t4")
        b = await connect(r2, "B@2", k="t4")
        # A witness of another key: replica 2 applies commits in their order,
        # so once W shows the later write, the silent one was applied there too.
        a2 = await connect(r1, "A2@1", k="t4w")
        w = await connect(r2, "W@2", k="t4w")
        everyone = (a, d, b, a2, w)
        try:
            await quiet(*everyone)
            before = runs(*everyone)
            await a.click("Silent write")
            assert value_of(a) == 1  # its own run read it after the callback wrote it
            await a2.click("Write")
            await w.wait_until(lambda: shows(w, 1), what="W shows the later write")
            await quiet(*everyone)
            delta = [x - y for x, y in zip(runs(*everyone), before, strict=True)]
            assert delta == [1, 0, 0, 1, 1], (delta, [s.describe() for s in everyone])
            assert (value_of(d), value_of(b)) == (0, 0)  # still what they read
            # The value is there on the next run, in both replicas.
            await b.click("Refresh")
            await d.click("Refresh")
            assert (value_of(b), value_of(d)) == (1, 1), (b.describe(), d.describe())
            await quiet(*everyone)
            after = [x - y for x, y in zip(runs(*everyone), before, strict=True)]
            assert after == [1, 1, 1, 1, 1], after
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


# -- 5. a run in progress in one replica is not interrupted by a write in the other ----------------


@pytest.mark.parametrize("read", ["body", "late"])
def test_a_run_in_progress_in_one_replica_is_not_interrupted_by_writes_in_the_other(
    replicas: tuple[StreamlitServer, StreamlitServer], gate_dir: Path, read: str
) -> None:
    """B (replica 2) clicks "Add"; its run waits at a gate while A (replica 1)
    writes three times. ``read=body``: B's run showed the key before the gate,
    so it is rerun once after its run, for the three writes together.
    ``read=late``: it reads the key after the gate, shows the writes itself,
    and is not rerun."""
    r1, r2 = replicas
    logs = LogWatch(r1, r2)
    key, gate = f"t5{read}", f"g5{read}"

    async def scenario() -> None:
        a = await connect(r1, "A@1", k=key)
        b = await connect(r2, "B@2 gated", k=key, read=read, gate=gate)
        c = await connect(r2, "C@2 witness", k=key)
        everyone = (a, b, c)
        try:
            await quiet(*everyone)
            (gate_dir / f"{gate}.armed").touch()
            mark = b.runs_started
            await b.click("Add", wait=False)
            await b.wait_until(
                lambda: b.runs_started > mark and b.run_in_progress, what="B's click run started"
            )
            c_before = c.runs_started
            for _ in range(3):
                await a.click("Write")
            # Replica 2 has the writes: C, on it, shows them.
            await c.wait_until(lambda: shows(c, 3), what="C on replica 2 shows the three writes")
            await asyncio.gather(a.wait_quiet(QUIET), c.wait_quiet(QUIET))
            assert b.runs_started == mark + 1 and b.run_in_progress, b.describe()  # not interrupted
            assert c.runs_started - c_before <= 3  # one pushed rerun per write at most
            (gate_dir / f"{gate}.open").touch()
            await b.wait_until(
                lambda: b.text_containing("clicks=1") is not None and shows(b, 3) and b.runs[-1].completed,
                what="the click kept and the writes shown",
            )
            await quiet(*everyone)
            assert b.runs[mark].completed, b.describe()  # the click run ran to its end
            assert b.runs_started - mark == (2 if read == "body" else 1), b.describe()
            assert number_after(b, "clicks=") == 1
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()
