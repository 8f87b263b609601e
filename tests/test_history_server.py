"""History against real ``streamlit run`` servers: ``server_state.revert``
from a click or from a thread reruns every session that shows a reverted key
exactly once, and nobody else; versions only move forward; on Redis, a
replica lists the commits of the others (naming the replica that made them)
and reverts them.

Sessions are the headless protocol client (tests/harness); the page is
``tests/apps/history_app.py``. As in tests/test_sessions.py, each test counts
runs per session per action and asserts exact numbers; ``wait_quiet``
(silence for a while) only asserts that nothing more happens after the
awaited effect. Each test uses keys of its own on the module's servers.

The same page checks the other multi-key commits, ``update(mapping)`` and
``clear()`` (issue 23), at the end of the module: they share its servers, as
``clear()`` empties a state that the tests before it no longer use.

What the reverting session's own run does follows the rule for any write
(docs/reruns.md, "The rules", rule 2): a revert in a widget callback is
read by the run that follows it, which is not rerun; a revert in the body
after the run showed the keys reruns that session once after its run.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlencode

import pytest
from harness import LogWatch, StreamlitServer, StreamlitSession, start_all

if TYPE_CHECKING:
    from redis_support import RedisServer

pytestmark = pytest.mark.server

APP = Path(__file__).resolve().parent / "apps" / "history_app.py"
QUIET = 0.8  # seconds of silence that count as "nothing more happens"
QUIET_TIMEOUT = 20.0  # a session still busy after this is rerunning without end

SHOWN_RE = re.compile(r"^(?P<key>\S+)=(?P<value>-?\d+) version=(?P<version>\d+)$")
COMMIT_RE = re.compile(r"^commit seq=(?P<seq>\d+) keys=(?P<keys>\S*) origin=(?P<origin>.*)$")


class Shown(NamedTuple):
    value: int
    version: int


class Listed(NamedTuple):
    seq: int
    keys: tuple[str, ...]
    origin: str


# -- servers and sessions ------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[StreamlitServer]:
    with StreamlitServer(APP) as s:
        yield s


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[tuple[StreamlitServer, StreamlitServer]]:
    """Two replicas of the page sharing the session's redis-server, named
    ``replica-1`` and ``replica-2`` in every history."""
    namespace = f"history-{uuid.uuid4().hex[:8]}"
    r1, r2 = start_all(
        [
            StreamlitServer(
                APP,
                env={
                    "SERVER_STATE_URL": redis_server.url,
                    "SERVER_STATE_NAMESPACE": namespace,
                    "SERVER_STATE_REPLICA": f"replica-{i}",
                },
            )
            for i in (1, 2)
        ]
    )
    try:
        yield r1, r2
    finally:
        r1.stop()
        r2.stop()


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


def shown(session: StreamlitSession, key: str) -> Shown | None:
    """The value and version the session shows for ``key`` (None: not shown)."""
    for text in session.texts():
        match = SHOWN_RE.match(text)
        if match is not None and match["key"] == key:
            return Shown(int(match["value"]), int(match["version"]))
    return None


def shown_value(session: StreamlitSession, key: str) -> Shown:
    found = shown(session, key)
    assert found is not None, session.describe()
    return found


def shows(session: StreamlitSession, values: dict[str, int]) -> bool:
    return all((s := shown(session, k)) is not None and s.value == v for k, v in values.items())


def listed(session: StreamlitSession) -> list[Listed]:
    """The commits the session's page lists, newest first."""
    out = []
    for text in session.texts():
        match = COMMIT_RE.match(text)
        if match is not None:
            out.append(
                Listed(int(match["seq"]), tuple(filter(None, match["keys"].split(","))), match["origin"])
            )
    return out


def reverted(session: StreamlitSession) -> set[str]:
    text = session.text_containing("reverted=")
    assert text is not None, session.describe()
    return set(text.removeprefix("reverted=").split(","))


async def wait_showing(sessions: Sequence[StreamlitSession], values: dict[str, dict[str, int]]) -> None:
    """Each session of ``sessions`` shows its keys' ``values`` (by key name)."""
    for s in sessions:
        want = {k: values[s.name][k] for k in values[s.name]}
        await s.wait_until(lambda s=s, want=want: shows(s, want), what=f"{s.name} shows {want}")


async def write(
    writer: StreamlitSession, everyone: Sequence[StreamlitSession], keys: dict[str, list[str]], n: int
) -> None:
    """``writer`` clicks "Write" (each of its keys + 1, one commit each);
    returns once every session shows ``n`` for its keys and all are quiet."""
    await writer.click("Write")
    await wait_showing(everyone, {s.name: dict.fromkeys(keys[s.name], n) for s in everyone})
    await quiet(*everyone)


# -- one server (memory) ---------------------------------------------------------------


@pytest.mark.parametrize(("button", "own_runs"), [("Revert", 1), ("Revert after reading", 2)])
def test_a_revert_clicked_reruns_every_bound_session_exactly_once_and_nobody_else(
    server: StreamlitServer, button: str, own_runs: int
) -> None:
    """W, which shows a and b, writes both three times (six commits), then
    reverts to the commit after its first click (a=1, b=1). Every other
    session that shows a or b reruns once and shows 1 (one commit: the one
    showing both, too, once); U, which shows neither, never runs; W's own run
    as for any write: 1 run for the revert in a callback, its run plus one
    rerun for the revert after its run showed the keys."""
    tag = "cb" if button == "Revert" else "body"
    a, b = f"{tag}.a", f"{tag}.b"
    logs = LogWatch(server)

    async def scenario() -> None:
        w = await connect(server, "W", show=f"{a},{b}")
        a1 = await connect(server, "A1", show=a)
        a2 = await connect(server, "A2", show=a)
        b1 = await connect(server, "B1", show=b)
        ab = await connect(server, "AB", show=f"{a},{b}")
        u = await connect(server, "U")
        everyone = (w, a1, a2, b1, ab, u)
        keys = {"W": [a, b], "A1": [a], "A2": [a], "B1": [b], "AB": [a, b], "U": []}
        try:
            await quiet(*everyone)
            await write(w, everyone, keys, 1)
            target = shown_value(w, b).version  # the commit after which a=1 and b=1
            assert shown_value(w, a).version == target - 1
            await write(w, everyone, keys, 2)
            await write(w, everyone, keys, 3)
            newest = shown_value(w, b).version
            await w.set_value("seq", target)
            await quiet(*everyone)

            before = runs(*everyone)
            await w.click(button)
            await wait_showing(everyone, {s.name: dict.fromkeys(keys[s.name], 1) for s in everyone})
            await quiet(*everyone)
            assert delta(before, *everyone) == [own_runs, 1, 1, 1, 1, 0], [s.describe() for s in everyone]
            assert reverted(w) == {a, b}
            # One new commit, after every other: versions only move forward.
            versions = {shown_value(s, k).version for s in everyone for k in keys[s.name]}
            assert versions == {newest + 1}, versions
            assert u.runs_started == 1  # its first run only

            # Reverting again to the same commit changes nothing: no commit, no rerun.
            before = runs(*everyone)
            await w.click(button)
            await quiet(*everyone)
            assert delta(before, *everyone) == [1, 0, 0, 0, 0, 0], [s.describe() for s in everyone]
            assert reverted(w) == {"nothing"}
            assert shown_value(ab, a) == shown_value(ab, b) == Shown(1, newest + 1)
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


def test_a_revert_of_named_keys_reruns_only_the_sessions_that_show_them(server: StreamlitServer) -> None:
    """R reverts only a (``revert(seq, keys=[a])``) to the state after W's
    first click: the sessions showing a rerun once and show a=1, those
    showing only b never run, and b keeps its value and version."""
    a, b = "named.a", "named.b"
    logs = LogWatch(server)

    async def scenario() -> None:
        w = await connect(server, "W", show=f"{a},{b}")
        a1 = await connect(server, "A1", show=a)
        b1 = await connect(server, "B1", show=b)
        b2 = await connect(server, "B2", show=b)
        r = await connect(server, "R", only=a)
        everyone = (w, a1, b1, b2, r)
        keys = {"W": [a, b], "A1": [a], "B1": [b], "B2": [b], "R": []}
        try:
            await quiet(*everyone)
            await write(w, everyone, keys, 1)
            target = shown_value(w, b).version
            await write(w, everyone, keys, 2)
            b_now = shown_value(w, b)
            await r.set_value("seq", target)
            await quiet(*everyone)

            before = runs(*everyone)
            await r.click("Revert")
            await wait_showing([w, a1], {"W": {a: 1, b: 2}, "A1": {a: 1}})
            await quiet(*everyone)
            assert delta(before, *everyone) == [1, 1, 0, 0, 1], [s.describe() for s in everyone]
            assert reverted(r) == {a}
            assert shown_value(w, a) == shown_value(a1, a) == Shown(1, b_now.version + 1)
            assert shown_value(w, b) == shown_value(b1, b) == shown_value(b2, b) == b_now
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


def test_a_revert_from_a_thread_reruns_every_bound_session_exactly_once(server: StreamlitServer) -> None:
    """U, which shows no key, starts a thread (no session attached) that
    reverts a and b to the state after W's first click: every session that
    shows a or b reruns once (W too: it is not the writer), U only runs its
    click run. U's page lists the revert as made by that thread, after W's
    commits made by W's session."""
    a, b = "thread.a", "thread.b"
    logs = LogWatch(server)

    async def scenario() -> None:
        w = await connect(server, "W", show=f"{a},{b}")
        a1 = await connect(server, "A1", show=a)
        b1 = await connect(server, "B1", show=b)
        ab = await connect(server, "AB", show=f"{a},{b}")
        u = await connect(server, "U", history="3")
        everyone = (w, a1, b1, ab, u)
        keys = {"W": [a, b], "A1": [a], "B1": [b], "AB": [a, b], "U": []}
        try:
            await quiet(*everyone)
            await write(w, everyone, keys, 1)
            target = shown_value(w, b).version
            await write(w, everyone, keys, 2)
            newest = shown_value(w, b).version
            await u.set_value("seq", target)
            await quiet(*everyone)
            # U's run lists W's last two commits, each naming W's session.
            assert listed(u)[:2] == [
                Listed(newest, (b,), f"session {w.session_id}"),
                Listed(newest - 1, (a,), f"session {w.session_id}"),
            ], u.describe()

            before = runs(*everyone)
            await u.click("Revert from a thread")
            await wait_showing(everyone, {s.name: dict.fromkeys(keys[s.name], 1) for s in everyone})
            await quiet(*everyone)
            assert delta(before, *everyone) == [1, 1, 1, 1, 1], [s.describe() for s in everyone]
            assert reverted(u) == {a, b}
            assert {shown_value(s, k).version for s in everyone for k in keys[s.name]} == {newest + 1}
            revert = listed(u)[0]
            assert revert.seq == newest + 1 and set(revert.keys) == {a, b}, u.describe()
            assert revert.origin == "thread reverter", u.describe()
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


# -- two replicas sharing one Redis -------------------------------------------------------


def test_a_replica_lists_and_reverts_a_commit_made_on_the_other(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    """W on replica 1 writes a and b twice. Replica 2's history lists those
    commits, naming replica 1 and W's session. U on replica 2 (showing no
    key) reverts to the state after W's first click: every session showing a
    or b, on both replicas, reruns exactly once and shows 1; U runs its click
    run only; replica 1's history lists the revert, naming replica 2 and U's
    session; versions only moved forward, alike on both replicas."""
    r1, r2 = replicas
    a, b = "redis.a", "redis.b"
    logs = LogWatch(r1, r2)

    async def scenario() -> None:
        w = await connect(r1, "W@1", show=f"{a},{b}")
        a1 = await connect(r1, "A@1", show=a)
        h1 = await connect(r1, "H@1", history="3")
        ab2 = await connect(r2, "AB@2", show=f"{a},{b}")
        b2 = await connect(r2, "B@2", show=b)
        u = await connect(r2, "U@2", history="3")
        everyone = (w, a1, h1, ab2, b2, u)
        keys = {"W@1": [a, b], "A@1": [a], "H@1": [], "AB@2": [a, b], "B@2": [b], "U@2": []}
        try:
            await quiet(*everyone)
            await write(w, everyone, keys, 1)
            target = shown_value(w, b).version
            await write(w, everyone, keys, 2)
            newest = shown_value(w, b).version
            assert shown_value(ab2, b) == Shown(2, newest)  # one sequence across replicas
            await u.set_value("seq", target)
            await quiet(*everyone)
            by_w = f"replica-1 · session {w.session_id}"
            assert listed(u)[:2] == [Listed(newest, (b,), by_w), Listed(newest - 1, (a,), by_w)], u.describe()

            before = runs(*everyone)
            await u.click("Revert")
            await wait_showing(everyone, {s.name: dict.fromkeys(keys[s.name], 1) for s in everyone})
            await quiet(*everyone)
            assert delta(before, *everyone) == [1, 1, 0, 1, 1, 1], [s.describe() for s in everyone]
            assert reverted(u) == {a, b}
            versions = {shown_value(s, k).version for s in everyone for k in keys[s.name]}
            assert versions == {newest + 1}, versions

            await h1.rerun()  # H shows no key: nothing reran it
            revert = listed(h1)[0]
            assert revert.seq == newest + 1 and set(revert.keys) == {a, b}, h1.describe()
            assert revert.origin == f"replica-2 · session {u.session_id}", h1.describe()
            assert listed(h1)[1] == Listed(newest, (b,), by_w), h1.describe()
        finally:
            await close_all(*everyone)

    asyncio.run(scenario())
    logs.assert_clean()


# -- update(mapping) and clear(): one commit each, on one server and on replicas ------------


async def update_then_clear(writer_server: StreamlitServer, other: StreamlitServer, tag: str) -> None:
    """W (on ``writer_server``; shows no key) writes a and b with one
    ``update(mapping)``, then clears the state. A (W's server) shows a, AB
    (``other``) shows a and b, U (``other``) shows none. Each call: one
    commit listed by W, holding both keys at one version; A and AB rerun
    exactly once, U never, W only for its click."""
    a, b = f"{tag}.a", f"{tag}.b"
    w = await connect(writer_server, "W", write=f"{a},{b}", history="1")
    a1 = await connect(writer_server, "A", show=a)
    ab = await connect(other, "AB", show=f"{a},{b}")
    u = await connect(other, "U")
    everyone = (w, a1, ab, u)
    try:
        await quiet(*everyone)
        for button, value in (("Write at once", 1), ("Clear", 0)):
            before = runs(*everyone)
            await w.click(button)
            await wait_showing([a1, ab], {"A": {a: value}, "AB": {a: value, b: value}})
            await quiet(*everyone)
            assert delta(before, *everyone) == [1, 1, 1, 0], (button, [s.describe() for s in everyone])
            commit = listed(w)[0]
            assert {a, b} <= set(commit.keys), (button, w.describe())
            if value:
                assert len(commit.keys) == 2, w.describe()
            assert shown_value(a1, a).version == shown_value(ab, a).version == commit.seq
            assert shown_value(ab, b).version == commit.seq
        assert u.runs_started == 1  # its first run only
    finally:
        await close_all(*everyone)


@pytest.mark.releases
def test_update_of_a_mapping_and_clear_rerun_each_bound_session_once(server: StreamlitServer) -> None:
    logs = LogWatch(server)
    asyncio.run(update_then_clear(server, server, "mapping"))
    logs.assert_clean()


def test_update_of_a_mapping_and_clear_are_one_commit_across_replicas(
    replicas: tuple[StreamlitServer, StreamlitServer],
) -> None:
    r1, r2 = replicas
    logs = LogWatch(r1, r2)
    asyncio.run(update_then_clear(r1, r2, "redis-mapping"))
    logs.assert_clean()
