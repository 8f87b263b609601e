"""The inspector: ``server_state.inspector()`` on a page.

What a person checks, each against a real ``streamlit run`` server: the
table lists the keys; a write in another session shows up without a reload
(and reruns only the inspector's fragment); the revert button is absent
unless the app allows it, and asked again at click time; private values
never reach the browser. One Chromium test looks at the example, and takes
docs/api.md's screenshot. The parts that need no server (the binding to every
key, the per-second counters, bounded previews and diffs, argument errors,
the Redis backend) are checked in process.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from harness import StreamlitServer, StreamlitSession
from pyrsistent import PVector, pvector

from server_state import ServerState, ServerStateTypeError, _scheduler
from server_state import _inspector as inspector_module
from server_state._base import Change
from server_state._tracker import EVERY_KEY, BindingTracker

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
EXAMPLES = ROOT / "examples"
SECRET = "hunter2-do-not-show"  # tests/apps/inspector_app.py's private value
QUIET = 0.8  # seconds of silence that count as "nothing more happens"


# -- in process -----------------------------------------------------------------------


def test_a_session_bound_to_every_key_is_rerun_for_any_key_never_as_a_loop() -> None:
    tracker = BindingTracker()
    inspector = tracker.ensure_entry("inspector", handle=None)
    other = tracker.ensure_entry("other", handle=None)
    run = tracker.run_started(inspector, None)
    tracker.bind(run, "fragment-1", EVERY_KEY, 5)  # what the inspector's fragment does at commit 5
    tracker.run_finished(run, completed=True)
    run = tracker.run_started(other, None)
    tracker.bind(run, None, "a", 5)
    tracker.run_finished(run, completed=True)

    # A commit no newer than what it showed: nobody to rerun.
    assert tracker.announce([Change("b", 0, 1, 5)], 0, frozenset(), None) == []
    # A key it never read, made in round 9 of a rerun chain: the inspector
    # reruns its fragment alone, and its rerun counts as round 1.
    flushed = tracker.announce([Change("brand-new", None, 1, 6)], 9, frozenset({"x"}), None)
    assert flushed == [inspector]
    plan = tracker.stale_plan(inspector)
    assert plan is not None
    assert (plan.full, plan.fragments, plan.round) == (False, frozenset({"fragment-1"}), 1)
    assert tracker.admit(inspector, plan)
    # Its writer (the session that made the commit) is judged by its own run.
    inspector.flush_scheduled = False
    assert tracker.announce([Change("c", None, 1, 7)], 0, frozenset(), inspector) == []


def test_nobody_bound_to_every_key_costs_nothing() -> None:
    tracker = BindingTracker()
    entry = tracker.ensure_entry("s", handle=None)
    run = tracker.run_started(entry, None)
    tracker.bind(run, None, "a", 1)
    tracker.run_finished(run, completed=True)
    assert tracker.announce([Change("b", None, 1, 2)], 0, frozenset(), None) == []
    assert EVERY_KEY not in tracker._announced


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_per_second_counts_are_a_ring_of_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(1_000.2)
    monkeypatch.setattr(_scheduler, "time", clock)
    rates = _scheduler.PerSecond(span=10)
    rates.commit()
    rates.commit()
    rates.rerun()
    clock.now = 1_002.9
    rates.commit()
    assert rates.last(4) == [(999, 0, 0), (1_000, 2, 1), (1_001, 0, 0), (1_002, 1, 0)]
    clock.now = 1_011.0  # the ring went round: second 1_001 reuses 1_011's bucket, cleared
    assert rates.last(3) == [(1_009, 0, 0), (1_010, 0, 0), (1_011, 0, 0)]
    assert rates.last(100)[0] == (1_002, 1, 0)  # at most the span: 10 seconds
    clock.now = 5_000.0  # a long pause
    assert all(c == r == 0 for _, c, r in rates.last(10))


def test_values_are_previewed_and_diffed_in_what_they_show() -> None:
    big = list(range(100_000))
    started = time.perf_counter()
    preview = inspector_module._preview(big)
    assert preview == "[0, 1, 2, 3, 4, 5, …]"
    assert inspector_module._preview({"a": [1, {"b": "x" * 500}]}).startswith("{'a': [1, {")
    assert len(inspector_module._preview("y" * 10_000)) <= 80

    # An append to a 100k-item pvector: the diff is the new item, not 100k lines.
    old: PVector[Any] = pvector(big)
    change = inspector_module._change(old, old.append("new"))
    assert change.splitlines() == ["@@ items 100000..: 100000 -> 100001 items @@", "+ [100000] 'new'"]
    # A map with one changed entry among 10k.
    before = {f"k{i}": i for i in range(10_000)}
    after = {**before, "k7": -7}
    assert inspector_module._change(before, after).splitlines()[1:] == ["- 'k7': 7", "+ 'k7': -7"]
    assert time.perf_counter() - started < 1.0  # O(n) once, no pformat of 100k items

    # Small values: a text diff, line by line.
    assert inspector_module._change([1, 2], [1, 2, 3]) == "-[1, 2]\n+[1, 2, 3]"
    assert inspector_module._size(big) == "100000"
    assert inspector_module._size(3) == ""


def test_bad_arguments_say_what_to_pass() -> None:
    state = ServerState()
    with pytest.raises(ServerStateTypeError, match=r"private=\['secret'\]"):
        state.inspector(private="secret")
    with pytest.raises(ServerStateTypeError, match="allow_revert"):
        state.inspector(allow_revert=True)  # type: ignore[arg-type]
    with pytest.raises(ServerStateTypeError, match=r"history=\.\.\.\) must be an int >= 0"):
        state.inspector(history=-1)


def _protos(node: Any) -> Iterator[bytes]:
    """The serialised elements under an AppTest node."""
    proto = getattr(node, "proto", None)
    if proto is not None:
        yield proto.SerializeToString()
    for child in getattr(node, "children", {}).values():
        yield from _protos(child)


def _private_by_predicate_page(state: "ServerState") -> None:  # noqa: UP037  (AppTest runs this source alone)
    state.inspector(private=lambda key: key.startswith("_"), history=1)


def test_loop_warnings_and_private_keys_by_predicate() -> None:
    from streamlit.testing.v1 import AppTest

    from server_state._tracker import RerunPlan

    state = ServerState()
    state["_password"] = "pa55word-never-shown"
    state["visible"] = [1, 2]
    state["_password"] = "pa55word-changed"
    tracker = state._tracker
    entry = tracker.ensure_entry("looping", handle=None)
    loop = RerunPlan(full=True, fragments=frozenset(), round=11, chain=frozenset({"ping", "pong"}))
    assert not tracker.admit(entry, loop)  # past MAX_ROUNDS: stopped, and reported

    at = AppTest.from_function(_private_by_predicate_page, args=(state,), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert "stopped a rerun loop" in warnings[0] and "'ping', 'pong'" in warnings[0]
    rows = {row["key"]: row for row in at.dataframe[0].value.to_dict("records")}
    assert rows["_password"]["value"] == "hidden" and rows["visible"]["value"] == "[1, 2]"
    assert len(at.expander) == 1  # history=1: the newest commit only, the private one
    assert [code.value for code in at.code] == ["hidden"]
    page = b"".join(_protos(at._tree.main))  # what the browser would get
    assert b"[1, 2]" in page and b"pa55word" not in page


def _redis_inspector_page(state: "ServerState") -> None:  # noqa: UP037  (AppTest runs this source alone)
    state.inspector(private=["token"])


def test_the_inspector_shows_a_redis_backed_state_with_commits_of_other_replicas() -> None:
    import fakeredis
    from streamlit.testing.v1 import AppTest

    from server_state._store import store_from_url

    server = fakeredis.FakeServer()

    def replica() -> ServerState:
        clients = (fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server))
        return ServerState(store_from_url("redis://fakeredis", clients=clients, block_ms=50))

    here, there = replica(), replica()
    followed = threading.Event()
    try:
        here["count"] = 1
        here["token"] = "redis-secret-value"
        here.watch("count", lambda key, old, new: followed.set() if new == 2 else None)
        there["count"] = 2  # another replica: followed into this one's mirror and history
        assert followed.wait(10), "the other replica's commit never reached this one"
        at = AppTest.from_function(_redis_inspector_page, args=(here,), default_timeout=30)
        at.run()
        assert not at.exception, at.exception
        rows = {row["key"]: row for row in at.dataframe[0].value.to_dict("records")}
        assert set(rows) == {"count", "token"}
        assert rows["count"]["value"] == "2"
        assert rows["token"]["value"] == "hidden"
        codes = [code.value for code in at.code]
        assert "-1\n+2" in codes  # the other replica's commit, with its diff
        assert all("redis-secret-value" not in code for code in codes)
    finally:
        for state in (here, there):
            state._store.close()


# -- a real server, protocol-level sessions --------------------------------------------


def shown_table(session: StreamlitSession) -> dict[str, dict[str, Any]] | None:
    """The inspector's table, decoded from the Arrow bytes the browser gets;
    None while the page shows none."""
    for node in session.elements():
        if node.type in ("dataframe", "arrow_data_frame"):
            proto = getattr(node.proto, node.type)
            data = proto.arrow_data.data if node.type == "dataframe" else proto.data
            rows = pa.ipc.open_stream(data).read_all().to_pylist()
            return {row["key"]: row for row in rows}
    return None


def table(session: StreamlitSession) -> dict[str, dict[str, Any]]:
    """``shown_table``, asserting the page shows it (for checks once a run is over)."""
    rows = shown_table(session)
    assert rows is not None, f"no table on the page\n{session.describe()}"
    return rows


def row_shown(session: StreamlitSession, key: str) -> dict[str, Any] | None:
    """``key``'s row of the table the page shows, or None: for ``wait_until``
    predicates, evaluated after every message, mid-run included."""
    rows = shown_table(session)
    return None if rows is None else rows.get(key)


def tables(session: StreamlitSession) -> list[list[dict[str, Any]]]:
    """Every table on the page, in order, as rows."""
    out = []
    for node in session.elements():
        if node.type in ("dataframe", "arrow_data_frame"):
            proto = getattr(node.proto, node.type)
            data = proto.arrow_data.data if node.type == "dataframe" else proto.data
            out.append(pa.ipc.open_stream(data).read_all().to_pylist())
    return out


def sent(session: StreamlitSession) -> bytes:
    """Everything on the page, as the bytes the server sent for it."""
    return b"".join(node.proto.SerializeToString() for node in session.nodes())


def revert_buttons(session: StreamlitSession) -> list[str]:
    return [w.label for w in session.widgets() if w.kind == "button" and w.label.startswith("Revert")]


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET) for s in sessions))


@pytest.fixture(scope="module")
def read_only_server() -> Iterator[StreamlitServer]:
    with StreamlitServer(APPS / "inspector_app.py") as server:
        yield server


@pytest.mark.server
def test_the_table_lists_the_keys_and_private_values_never_reach_the_browser(
    read_only_server: StreamlitServer,
) -> None:
    async def scenario() -> None:
        async with StreamlitSession(read_only_server) as a:
            assert not a.exceptions(), a.exceptions()
            rows = table(a)
            assert {"secret", "greeting"} <= set(rows)
            assert rows["greeting"]["value"] == "'hello'"
            assert rows["greeting"]["type"] == "str"
            assert rows["secret"]["value"] == "hidden"
            assert (rows["secret"]["type"], rows["secret"]["size"]) == ("str", str(len(SECRET)))
            version = rows["secret"]["version"]
            assert SECRET.encode() not in sent(a)
            assert b"'hello'" in sent(a)  # what is not private is sent, as the table shows

            await a.click("Rotate")  # a commit of the private key: its diff is hidden too
            await a.wait_until(
                lambda: (row := row_shown(a, "secret")) is not None and row["version"] > version,
                what="the rotated secret",
            )
            await quiet(a)
            page = sent(a)
            assert SECRET.encode() not in page
            assert b"-rotated" not in page
            assert "hidden" in a.texts()  # the commit's diff
            assert not a.exceptions(), a.exceptions()

    asyncio.run(scenario())


@pytest.mark.server
def test_the_inspector_shows_expiry_deadlines_and_who_is_in_each_room(
    read_only_server: StreamlitServer,
) -> None:
    async def scenario() -> None:
        async with StreamlitSession(read_only_server) as a, StreamlitSession(read_only_server) as b:
            assert table(a).get("greeting", {}).get("expires (UTC)") == ""  # no lifetime
            await b.click("Draft")
            await a.wait_until(lambda: "draft" in table(a), what="the draft in A's table")
            expires = table(a)["draft"]["expires (UTC)"]
            assert expires.endswith(" (idle 3600 s)"), expires
            await b.click("Join")
            await a.wait_until(lambda: len(tables(a)) > 1, what="the rooms in A's inspector")
            (lobby,) = tables(a)[1]
            assert (lobby["room"], lobby["members"], lobby["who"]) == ("lobby", 1, "Ada")
            assert not a.exceptions() and not b.exceptions()

    asyncio.run(scenario())


@pytest.mark.server
def test_a_write_in_another_session_reruns_only_the_inspector_fragment(
    read_only_server: StreamlitServer,
) -> None:
    async def scenario() -> None:
        async with StreamlitSession(read_only_server) as a, StreamlitSession(read_only_server) as b:
            await quiet(a, b)
            full, fragments = a.full_runs, a.fragment_runs
            before = set(table(a))

            await b.click("Create")  # a key that did not exist when A's inspector last ran
            new = set(table(b)) - before
            assert len(new) == 1, table(b)
            (key,) = new
            await a.wait_until(lambda: row_shown(a, key) is not None, what=f"{key!r} in A's table")
            assert table(a)[key]["value"] == "'fresh'"
            await quiet(a, b)
            assert (a.full_runs, a.fragment_runs) == (full, fragments + 1)

            await b.click("Bump")
            await a.wait_until(lambda: row_shown(a, "count") is not None, what="count in A's table")
            await quiet(a, b)
            assert (a.full_runs, a.fragment_runs) == (full, fragments + 2)
            assert table(a)["count"]["version"] == table(b)["count"]["version"]
            assert revert_buttons(a) == revert_buttons(b) == []  # read-only: no allow_revert
            assert not a.exceptions() and not b.exceptions()

    asyncio.run(scenario())


@pytest.mark.server
def test_revert_needs_allow_revert_to_say_yes_when_shown_and_when_clicked(tmp_path: Path) -> None:
    flag = tmp_path / "allowed"
    with StreamlitServer(APPS / "inspector_app.py", env={"INSPECTOR_ALLOW_FILE": str(flag)}) as server:

        async def scenario() -> None:
            async with StreamlitSession(server) as a, StreamlitSession(server) as b:
                await a.click("Bump")
                first = table(a)["count"]["version"]
                await a.click("Bump")
                assert table(a)["count"]["value"] == "2"
                await a.rerun()
                assert revert_buttons(a) == []  # allow_revert says no: no button at all

                flag.touch()
                await a.rerun()
                assert f"Revert to #{first}" in revert_buttons(a)

                # Allowed when drawn, no longer when clicked: nothing written.
                flag.unlink()
                version = table(a)["count"]["version"]
                await a.click(f"Revert to #{first}")
                await a.wait_for_text(f"Not allowed to revert to #{first}.")
                assert table(a)["count"]["version"] == version
                assert revert_buttons(a) == []

                flag.touch()
                await a.rerun()
                await quiet(a, b)
                await a.click(f"Revert to #{first}")
                await a.wait_for_text(f"Reverted count to their values after #{first}.")
                assert table(a)["count"]["value"] == "1"
                assert table(a)["count"]["version"] > version  # a new commit: versions move forward
                await b.wait_until(
                    lambda: (row := row_shown(b, "count")) is not None and row["value"] == "1",
                    what="the revert in B",
                )
                assert not a.exceptions() and not b.exceptions()

        asyncio.run(scenario())


# -- Chromium --------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.server
@pytest.mark.browser
def test_in_chromium_the_inspector_follows_another_tab_and_hides_what_is_private(tmp_path: Path) -> None:
    from harness.browser import sync_chromium, wait_for_app_idle
    from playwright.sync_api import Page, expect

    timeout = 30_000

    def click(page: Page, name: str, commits: int) -> None:
        # Idle right after a click can be the state before the click's run
        # started; the page's own inspector showing the click's commit cannot.
        page.get_by_test_id("stButton").get_by_role("button", name=name, exact=True).click()
        expect(page.get_by_test_id("stExpander")).to_have_count(commits, timeout=timeout)
        wait_for_app_idle(page, timeout)

    def key_cells(page: Page) -> Any:
        # st.dataframe draws on a canvas; its accessible table holds the cells.
        return page.get_by_test_id("stDataFrame").locator('[id^="glide-cell-0-"]')

    def reverts(page: Page) -> Any:
        # In the DOM, shown or not: collapsed expanders hold theirs too.
        return page.get_by_test_id("stButton").filter(has_text="Revert to #")

    with (
        StreamlitServer(EXAMPLES / "inspector.py") as server,
        sync_chromium(timeout_ms=60_000) as browser,
    ):
        a = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
        b = browser.new_context().new_page()
        for page in (a, b):
            page.set_default_timeout(timeout)
            page.goto(server.url)
            wait_for_app_idle(page, 60_000)
        try:
            expect(key_cells(a)).to_have_text(["api_token"], timeout=timeout)
            # Commit #1 set api_token; each click is one more, one after another.
            for commits, name in enumerate(("+1", "Say hello", "Pick a colour", "Say hello", "+1"), 2):
                click(b, name, commits)
            # A was not touched: its table follows B's writes.
            expect(key_cells(a)).to_have_text(["api_token", "count", "messages", "colour"], timeout=timeout)
            expect(a.get_by_test_id("stExpander")).to_have_count(6, timeout=timeout)
            wait_for_app_idle(a, timeout)
            # Collapsed expanders are in the DOM too: no button anywhere, no token
            # (the example's api_token is "tok-" and 24 hex digits).
            html = a.content()
            assert "Revert to #" not in html
            assert reverts(a).count() == 0
            assert "tok-" not in html

            # The admin toggle makes allow_revert say yes: the buttons appear.
            a.get_by_text("Admin (may revert)").click()
            expect(reverts(a)).to_have_count(
                5, timeout=timeout
            )  # every commit but the newest (the state now)
            wait_for_app_idle(a, timeout)
            a.get_by_test_id("stExpander").nth(1).locator("summary").click()  # commit #5
            expect(a.get_by_role("button", name="Revert to #5", exact=True)).to_be_visible(timeout=timeout)
            expect(a.get_by_test_id("stException")).to_have_count(0)
            assert "tok-" not in a.content()

            code = "[data-testid=stCode], [data-testid=stCodeBlock]"  # st.code is stCodeBlock in 1.37
            expect(a.get_by_test_id("stExpander").nth(1).locator(code)).to_be_visible(timeout=timeout)
            # Streamlit scrolls inside the page: the viewport is the picture.
            shot = a.screenshot(path=str(tmp_path / "inspector.png"), animations="disabled")
            width, height = _png_size(shot)
            assert width >= 1000 and height >= 800 and len(shot) > 20_000, (width, height, len(shot))
            if os.environ.get("SERVER_STATE_SCREENSHOT_DIR"):
                out = Path(os.environ["SERVER_STATE_SCREENSHOT_DIR"])
                out.mkdir(parents=True, exist_ok=True)
                (out / "inspector.png").write_bytes(shot)
        finally:
            a.context.close()
            b.context.close()


def test_the_diagnostics_the_inspector_is_built_on_are_public() -> None:
    """rates(), loop_warnings(), snapshot(bind_all=True), Snapshot.stored and
    Commit.change: what a tool needs to draw the state without private members."""
    state = ServerState()
    assert [c for _, c, _ in state.rates(3)] == [0, 0, 0]  # counting starts at the first call
    state["log"] = [1, 2]
    state.update("n", lambda v: v + 1, default=0)
    assert sum(c for _, c, _ in state.rates(120)) == 2
    assert state.loop_warnings() == []
    snapshot = state.snapshot(bind_all=True)
    stored = snapshot.stored("log")
    assert type(stored).__name__ == "FrozenList" and stored == [1, 2]
    with pytest.raises(KeyError, match="no key 'gone'"):
        snapshot.stored("gone")
    with pytest.raises(ServerStateTypeError, match="bind_all takes no keys"):
        state.snapshot("log", bind_all=True)
    change = state.history("n")[0].change("n")
    assert (change.key, change.new, change.version) == ("n", 1, state.version("n"))
    with pytest.raises(ServerStateTypeError, match="int >= 1"):
        state.rates(0)
