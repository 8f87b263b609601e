"""The migration guide (docs/migrating.md), checked against real servers.

Two of the seed README's examples, ported (examples/migrated/) and as upstream
wrote them with only the import changed (tests/apps/migr_upstream_*.py), run
on real ``streamlit run`` servers and driven by the headless protocol client:
same behaviour, exact run counts. tests/apps/migr_rules_app.py holds one
button per difference the guide lists.

``wait_quiet`` (silence for a while) is used only to assert that nothing more
happens after the awaited effect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from harness import StreamlitServer, StreamlitSession, run_sessions

from server_state import ReadOnlyValueError, ServerState

ROOT = Path(__file__).resolve().parent.parent
MIGRATED = ROOT / "examples" / "migrated"
APPS = ROOT / "tests" / "apps"
QUIET = 0.8  # seconds of silence that count as "nothing more happens"

# sha256 of upstream's files at tag v0.20.2 of whitphx/streamlit-server-state
# (git show v0.20.2:<path> | sha256sum); the same code was app_global_slider.py
# and app_chat_rooms.py at the repository root before March 2025.
UPSTREAM = {
    "migr_upstream_global_slider.py": (
        "pages/3_global_slider.py",
        "a614ffe39d2c61cb2279cebd68c503347da17930f2416713042b12320114a796",
    ),
    "migr_upstream_chat_rooms.py": (
        "pages/2_chat_rooms.py",
        "93b659e80bb25be304664bf524668d14124fcfb3b267dc24b6f705766385c21a",
    ),
}
OUR_IMPORT = "from server_state import"
UPSTREAM_IMPORT = "from streamlit_server_state import"

SLIDER_APPS = [MIGRATED / "app_global_slider.py", APPS / "migr_upstream_global_slider.py"]
ROOMS_APPS = [MIGRATED / "app_chat_rooms.py", APPS / "migr_upstream_chat_rooms.py"]


async def quiet(*sessions: StreamlitSession) -> None:
    await asyncio.gather(*(s.wait_quiet(QUIET) for s in sessions))


def runs_since(sessions: list[StreamlitSession], before: list[int]) -> list[int]:
    return [s.runs_started - n for s, n in zip(sessions, before, strict=True)]


def assert_never_cut_short(session: StreamlitSession, after: int) -> None:
    """Every run since ``after`` ran to its end: none was replaced by a rerun mid-run."""
    runs = session.runs[after:]
    assert runs and all(r.completed for r in runs), session.describe()


def code_lines(path: Path) -> list[str]:
    """The file's lines that are not comments (a port adds only comment lines)."""
    return [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]


# -- the copies and ports are what they say ---------------------------------------------


def upstream_original(name: str) -> str:
    """Upstream's file back from its copy: the header dropped, the import reverted."""
    lines = (APPS / name).read_text().splitlines(keepends=True)
    while lines[0].startswith("#"):  # the header saying where the copy comes from
        lines.pop(0)
    imports = [i for i, line in enumerate(lines) if line.startswith(OUR_IMPORT)]
    assert len(imports) == 1, name
    lines[imports[0]] = lines[imports[0]].replace(OUR_IMPORT, UPSTREAM_IMPORT)
    return "".join(lines)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_upstream_copy_differs_from_upstream_only_in_its_import(name: str) -> None:
    upstream_path, digest = UPSTREAM[name]
    assert hashlib.sha256(upstream_original(name).encode()).hexdigest() == digest, (
        f"{name} is no longer upstream's {upstream_path} with only the import changed"
    )


@pytest.mark.parametrize("port", [SLIDER_APPS, ROOMS_APPS], ids=["slider", "chat_rooms"])
def test_port_is_the_upstream_code_plus_comments(port: list[Path]) -> None:
    ported, upstream = port
    assert code_lines(ported) == code_lines(upstream)


# -- the guide's tables, in one process (no sessions needed) -------------------------------


@pytest.mark.parametrize(
    ("key", "initial", "mutate", "op", "fix", "expected"),
    [
        (
            "messages",
            ["a"],
            lambda v: v.append("m"),
            "append",
            lambda s: s.update("messages", lambda ms: ms + ["m"]),  # noqa: RUF005 - the guide's line
            ["a", "m"],
        ),
        (
            "messages",
            ["a"],
            lambda v: v.__iadd__(["m"]),
            "+=",
            lambda s: s.__setitem__("messages", s["messages"] + ["m"]),
            ["a", "m"],
        ),
        (
            "cfg",
            {"a": 1},
            lambda v: v.__setitem__("theme", "dark"),
            "item assignment",
            lambda s: s.update("cfg", lambda c: {**c, "theme": "dark"}),
            {"a": 1, "theme": "dark"},
        ),
        (
            "cfg",
            {"a": 1},
            lambda v: v.update(theme="dark"),
            "update",
            lambda s: s.update("cfg", lambda c: {**c, "theme": "dark"}),
            {"a": 1, "theme": "dark"},
        ),
        (
            "cfg",
            {"a": 1},
            lambda v: v.setdefault("theme", "dark"),
            "setdefault",
            lambda s: s.update("cfg", lambda c: {"theme": "dark", **c}),
            {"theme": "dark", "a": 1},
        ),
        (
            "messages",
            ["b", "a"],
            lambda v: v.sort(),
            "sort",
            lambda s: s.update("messages", sorted),
            ["a", "b"],
        ),
        (
            "messages",
            ["a", "m"],
            lambda v: v.pop(),
            "pop",
            lambda s: s.update("messages", lambda ms: ms[:-1]),
            ["a"],
        ),
    ],
)
def test_in_place_mutation_raises_and_the_fix_works(
    fresh_state: ServerState,
    key: str,
    initial: Any,
    mutate: Callable[[Any], object],
    op: str,
    fix: Callable[[ServerState], object],
    expected: Any,
) -> None:
    fresh_state[key] = initial
    version = fresh_state.version(key)
    with pytest.raises(ReadOnlyValueError) as raised:
        mutate(fresh_state[key])
    assert str(raised.value) == (
        f"server_state[{key!r}] is read-only ({op} is not allowed): assign a new value "
        f"(server_state[{key!r}] = new_value) or use server_state.update({key!r}, fn)."
    )
    assert isinstance(raised.value, TypeError) and raised.value.key == key
    assert (fresh_state[key], fresh_state.version(key)) == (initial, version)  # nothing changed
    fix(fresh_state)
    assert fresh_state[key] == expected and fresh_state.version(key) > version


def test_a_set_reads_as_a_frozenset(fresh_state: ServerState) -> None:
    fresh_state["tags"] = {"a"}
    with pytest.raises(AttributeError, match="'frozenset' object has no attribute 'add'"):
        fresh_state["tags"].add("t")
    fresh_state.update("tags", lambda ts: ts | {"t"})
    assert fresh_state["tags"] == frozenset({"a", "t"})


def test_what_counts_as_a_change(fresh_state: ServerState) -> None:
    def changes(key: str, value: object) -> bool:
        before = fresh_state.version(key)
        fresh_state[key] = value
        return fresh_state.version(key) != before

    fresh_state["n"] = 1
    assert not changes("n", 1)
    assert changes("n", 1.0) and changes("n", True)  # a reader could tell them apart
    # A change deep inside a big frame or array: upstream's truncated repr missed it.
    df = pd.DataFrame({"x": range(100)})
    fresh_state["df"] = df
    assert not changes("df", df.copy())
    other = df.copy()
    other.loc[50, "x"] = -1
    assert changes("df", other)
    frame = fresh_state["df"]
    frame.loc[1, "x"] += 1  # the same object, changed in place...
    assert changes("df", frame)  # ...is a change: its content is fingerprinted
    fresh_state["arr"] = np.arange(2000)
    arr = np.arange(2000)
    arr[1000] = -1
    assert changes("arr", arr)

    @dataclasses.dataclass
    class Board:
        title: str
        notes: list[str] = dataclasses.field(default_factory=list)

    board = Board("a")
    fresh_state["board"] = board
    assert fresh_state["board"] is board  # stored by reference
    board.notes.append("x")
    assert not changes("board", board)  # the same object: no change, no rerun
    assert changes("board", dataclasses.replace(board, title="b"))  # a new object is one


# -- the shared slider ---------------------------------------------------------------


def shows(session: StreamlitSession, value: int) -> bool:
    """Whether the page shows the slider at ``value`` (False while it shows no
    slider: a ``wait_until`` predicate is evaluated mid-run too)."""
    return any(w.label == "Shared value" and w.value == value for w in session.widgets())


@pytest.mark.server
@pytest.mark.parametrize("app", SLIDER_APPS, ids=["port", "upstream_copy"])
def test_global_slider_move_shows_in_the_other_tab(app: Path) -> None:
    async def scenario(server: StreamlitServer) -> None:
        a, b = await run_sessions(server, 2)
        try:
            await quiet(a, b)
            assert shows(a, 50) and shows(b, 50)
            for mover, other, value in ((a, b, 42), (b, a, 7)):
                mark = [a.runs_started, b.runs_started]
                await mover.set_value("Shared value", value)
                await other.wait_until(lambda o=other, v=value: shows(o, v), what=f"the other tab at {value}")
                await quiet(a, b)  # raises if the tabs kept rerunning each other
                deltas = dict(zip((a, b), runs_since([a, b], mark), strict=True))
                # The other tab: exactly one pushed rerun. The mover: its own run,
                # then one rerun after it (it read the old value before writing),
                # never one during it.
                assert (deltas[mover], deltas[other]) == (2, 1), (a.describe(), b.describe())
                assert_never_cut_short(mover, mark[0] if mover is a else mark[1])
                assert shows(a, value) and shows(b, value)
            assert not a.exceptions() and not b.exceptions()
            assert "rerun loop" not in server.log_text()
        finally:
            await asyncio.gather(a.close(), b.close())

    with StreamlitServer(app) as server:
        asyncio.run(scenario(server))


# -- chat rooms ----------------------------------------------------------------------


def shown_messages(session: StreamlitSession) -> str | None:
    """The st.write(messages) JSON, the text after "Messages:"; None while the
    page does not show it (for ``wait_until`` predicates, evaluated mid-run too)."""
    texts = session.texts()
    at = texts.index("Messages:") + 1 if "Messages:" in texts else len(texts)
    return texts[at] if at < len(texts) else None


def messages(session: StreamlitSession) -> str:
    shown = shown_messages(session)
    assert shown is not None, session.describe()
    return shown


@pytest.mark.server
@pytest.mark.parametrize("app", ROOMS_APPS, ids=["port", "upstream_copy"])
def test_chat_rooms_message_reaches_its_room_only(app: Path) -> None:
    async def scenario(server: StreamlitServer) -> None:
        a, b, c = sessions = await run_sessions(server, 3)
        try:
            await quiet(*sessions)
            for room in ("X", "Y"):
                mark = [s.runs_started for s in sessions]
                await a.set_value("Room name", room)  # inside the form: no run yet
                await a.click("Create a new room")
                await quiet(*sessions)
                # The creator wrote "rooms" in a callback and read it afterwards:
                # its own run only. The others showed the room list: one rerun each.
                deltas = runs_since(sessions, mark)
                if room == "X":
                    # ...and X is every tab's selected room, so each run checks
                    # `room_key not in server_state` under the lock; the one tab
                    # that finds it missing and writes [] had read it first, so
                    # it reruns once more after its run (whichever tab got there first).
                    assert sorted(deltas) == [1, 1, 2], [s.describe() for s in sessions]
                else:
                    assert deltas == [1, 1, 1], [s.describe() for s in sessions]
            # The room list changed, so the unkeyed radio is a new widget in every
            # tab and starts at the first room (Streamlit's rule, with both libraries).
            assert [s.widget_value("Select room") for s in sessions] == ["X", "X", "X"]
            await c.set_value("Select room", "Y")
            for s, nick in ((a, "ann"), (b, "bob"), (c, "cy")):
                await s.set_value("Nick name", nick)
            await quiet(*sessions)
            assert [messages(s) for s in sessions] == ["[]", "[]", "[]"]

            mark = [s.runs_started for s in sessions]
            await a.set_value("Message", "hello X")
            await b.wait_until(lambda: "hello X" in (shown_messages(b) or ""), what="B shows A's message")
            await quiet(*sessions)
            # A: its own run only (written in on_change, read afterwards). B: one
            # rerun. C: none; it showed room X before moving to Y, and only its
            # latest run counts.
            assert runs_since(sessions, mark) == [1, 1, 0], [s.describe() for s in sessions]
            assert messages(a) == messages(b) == '[{"nickname": "ann", "text": "hello X"}]'
            assert messages(c) == "[]" and c.text_containing("hello X") is None

            mark = [s.runs_started for s in sessions]
            await c.set_value("Message", "hi Y")
            await quiet(*sessions)
            assert runs_since(sessions, mark) == [0, 0, 1], [s.describe() for s in sessions]  # C only
            assert "hi Y" in messages(c) and "hi Y" not in messages(a) + messages(b)
            assert not any(s.exceptions() for s in sessions)
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    with StreamlitServer(app) as server:
        asyncio.run(scenario(server))


@pytest.mark.server
def test_upstream_library_reruns_a_tab_for_a_room_it_left(tmp_path: Path) -> None:
    """The contrast of section 7, on streamlit-server-state 0.20.2 itself: the
    same steps as above, and the tab that moved to room Y is rerun for room X."""
    app = tmp_path / "app_chat_rooms.py"
    app.write_text(upstream_original("migr_upstream_chat_rooms.py"))

    async def scenario(server: StreamlitServer) -> None:
        a, b, c = sessions = await run_sessions(server, 3)
        try:
            for room in ("X", "Y"):
                await a.set_value("Room name", room)
                await a.click("Create a new room")
                await quiet(*sessions)
            await c.set_value("Select room", "Y")  # C read room X's key before this
            for s, nick in ((a, "ann"), (b, "bob"), (c, "cy")):
                await s.set_value("Nick name", nick)
            await quiet(*sessions)
            c_before = c.runs_started
            await a.set_value("Message", "hello X")
            await b.wait_until(lambda: "hello X" in (shown_messages(b) or ""), what="B shows A's message")
            await quiet(*sessions)
            assert c.runs_started - c_before == 1, c.describe()
            assert messages(c) == "[]"
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    with StreamlitServer(app) as server:
        asyncio.run(scenario(server))


# -- each difference the guide lists -----------------------------------------------------


@pytest.fixture(scope="module")
def rules_server() -> Iterator[StreamlitServer]:
    with StreamlitServer(APPS / "migr_rules_app.py") as server:
        yield server


def after(session: StreamlitSession, prefix: str) -> str:
    text = session.text_containing(prefix)
    assert text is not None, session.describe()
    return text.split(prefix, 1)[1]


@pytest.mark.server
def test_each_difference_in_the_guide(rules_server: StreamlitServer) -> None:
    async def scenario() -> None:
        a = await StreamlitSession(rules_server, name="A").connect()
        b = await StreamlitSession(rules_server, name="B").connect()
        c = await StreamlitSession(rules_server, name="C", query_string="outside=1").connect()
        sessions = [a, b, c]
        try:
            await quiet(*sessions)

            async def press(label: str) -> list[int]:
                mark = [s.runs_started for s in sessions]
                await a.click(label)
                await quiet(*sessions)
                assert_never_cut_short(a, mark[0])
                return runs_since(sessions, mark)

            # The writer is never rerun during its run; it reruns once after it,
            # because it showed "count" before writing it.
            assert await press("Increment") == [2, 1, 1]
            assert [after(s, "count=") for s in sessions] == ["1", "1", "1"]

            # An equal write changes nothing and reruns nobody.
            assert await press("Write the same count") == [1, 0, 0]

            # In-place mutation of a read value raises, naming the key and the fix.
            for label, op in (("Append in place", "append"), ("Extend with +=", "+=")):
                assert await press(label) == [1, 0, 0]
                # The page shows the error (newer Streamlit releases qualify its type).
                [(kind, message)] = [e.split(": ", 1) for e in a.exceptions()]
                assert kind in ("ReadOnlyValueError", "server_state._errors.ReadOnlyValueError"), kind
                assert message == (
                    f"server_state['messages'] is read-only ({op} is not allowed): assign a new "
                    "value (server_state['messages'] = new_value) or use "
                    "server_state.update('messages', fn)."
                )
            assert [after(s, "messages=") for s in sessions] == ["[]", "[]", "[]"]
            # The one-line fix.
            assert await press("Append with update") == [2, 1, 1]
            assert [after(s, "messages=") for s in sessions] == ["['hi']"] * 3
            assert not a.exceptions()

            # An object of the app's own, changed in place and assigned again: the
            # same object, so no change (upstream compared reprs and reran)...
            assert await press("Change the board and reassign it") == [1, 0, 0]
            assert after(b, "notes=") == "[]"  # B shows a stale board
            # ...announce it instead.
            assert await press("Change the board and announce it") == [2, 1, 1]
            assert [after(s, "notes=") for s in sessions[1:]] == ["['reassigned', 'announced']"] * 2

            # Fragment scoping: B read "frag" only inside the fragment, so only the
            # fragment reruns; C also read it outside, so C's whole page reruns.
            b_full, c_full, c_frag = b.full_runs, c.full_runs, c.fragment_runs
            assert (await press("Bump frag"))[1:] == [1, 1]
            assert (b.runs[-1].kind, b.full_runs) == ("fragment", b_full)
            assert (c.runs[-1].kind, c.full_runs, c.fragment_runs) == ("full", c_full + 1, c_frag)
            assert [after(s, "frag=") for s in sessions] == ["1", "1", "1"]
            assert after(c, "frag outside=") == "1"
        finally:
            await asyncio.gather(*(s.close() for s in sessions))

    asyncio.run(scenario())
