"""Every example runs under AppTest and its main path works.

AppTest mocks the Runtime and runs each app as one session in this process, so
these check the examples' own logic (callbacks, reads, writes), not pushed
reruns between sessions: the server tests cover those. Two AppTests share
module globals, hence server_state, which lets a test play a second tab by
calling ``.run()`` on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from server_state import server_state

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    """server_state is process-wide: start and end every test with no keys."""
    for k in list(server_state):
        del server_state[k]
    yield
    for k in list(server_state):
        del server_state[k]


def app(name: str) -> AppTest:
    at = AppTest.from_file(str(EXAMPLES / name), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def by_label(widgets: Iterable[Any], label: str) -> Any:
    widgets = list(widgets)
    matches = [w for w in widgets if w.label == label]
    assert len(matches) == 1, f"expected one widget labelled {label!r}, got {[w.label for w in widgets]}"
    return matches[0]


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def metric(at: AppTest, label: str) -> str:
    return str(by_label(at.metric, label).value)


def test_global_counter() -> None:
    at = app("global_counter.py")
    assert "Global Counter Example" in at.title[0].value
    assert "Count =  `0`" in texts(at)  # st.write("Count = ", 0)
    by_label(at.button, "Increment").click().run()
    by_label(at.button, "Increment").click().run()
    by_label(at.button, "Decrement").click().run()
    assert not at.exception, at.exception
    assert "Count =  `1`" in texts(at)
    assert server_state.peek("count") == 1


def send(at: AppTest, name: str, text: str) -> None:
    by_label(at.text_input, "Your name").set_value(name)
    by_label(at.text_input, "Message").set_value(text)
    by_label(at.button, "Send").click().run()
    assert not at.exception, at.exception


def test_chat() -> None:
    alice, bob = app("chat.py"), app("chat.py")
    send(alice, "alice", "hello")
    assert "**alice**: hello" in texts(alice)
    assert by_label(alice.text_input, "Message").value == ""  # cleared for the next message
    send(bob, "bob", "hi alice")
    alice.run()
    assert texts(alice)[-2:] == ["**alice**: hello", "**bob**: hi alice"]
    assert server_state.peek("messages") == [
        {"name": "alice", "text": "hello"},
        {"name": "bob", "text": "hi alice"},
    ]


def test_chat_ignores_empty_message() -> None:
    at = app("chat.py")
    send(at, "alice", "   ")
    assert "messages" not in server_state


def test_chat_rooms() -> None:
    at = app("chat_rooms.py")
    assert list(by_label(at.sidebar.radio, "Room").options) == ["general"]
    send(at, "alice", "in general")

    by_label(at.sidebar.text_input, "New room").set_value("python")
    by_label(at.sidebar.button, "Create room").click().run()
    assert not at.exception, at.exception
    assert server_state.peek("rooms") == ["general", "python"]
    assert by_label(at.sidebar.radio, "Room").value == "python"  # the creator moves to it
    assert "in general" not in " ".join(texts(at))

    send(at, "alice", "in python")
    assert "**alice**: in python" in texts(at)
    # The topic box is a shared widget: an edit is the room's topic for everyone.
    by_label(at.text_input, "Topic").set_value("snakes").run()
    assert not at.exception, at.exception
    assert server_state.peek("topic:python") == "snakes"
    assert server_state.deadline("topic:python") is not None
    server_state["topic:python"] = "pythons"  # another tab's edit shows here
    at.run()
    assert by_label(at.text_input, "Topic").value == "pythons"
    assert at.caption[0].value == "Here: alice (you)"  # who is here, in the room shown
    assert server_state.deadline("room:python") is not None  # rooms vanish after an hour idle
    assert server_state.peek("room:general") == [{"name": "alice", "text": "in general"}]
    assert server_state.peek("room:python") == [{"name": "alice", "text": "in python"}]

    # Creating an existing room adds no duplicate.
    by_label(at.sidebar.text_input, "New room").set_value("general")
    by_label(at.sidebar.button, "Create room").click().run()
    assert server_state.peek("rooms") == ["general", "python"]
    assert "**alice**: in general" in texts(at)

    # The python room's idle hour is over: it leaves the list at the next run.
    expired = threading.Event()
    unwatch = server_state.watch("room:python", lambda key, old, new: expired.set())
    server_state.expire("room:python", at=time.time() - 1)
    assert expired.wait(15)
    unwatch()
    at.run()
    assert not at.exception, at.exception
    assert list(by_label(at.sidebar.radio, "Room").options) == ["general"]
    assert server_state.peek("rooms") == ["general"]


def test_shared_slider() -> None:
    at = app("shared_slider.py")
    assert by_label(at.slider, "Shared value").value == 0
    by_label(at.slider, "Shared value").set_value(42).run()
    assert not at.exception, at.exception
    assert server_state.peek("slider_value") == 42
    # Written back on every run, but an equal write is no change.
    version = server_state.version("slider_value")
    at.run()
    at.run()
    assert server_state.version("slider_value") == version
    # Another tab's move shows here.
    server_state.slider_value = 7
    at.run()
    assert by_label(at.slider, "Shared value").value == 7


@pytest.fixture
def dashboard_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHBOARD_PERIOD", "0.02")
    yield
    # Stop the worker (its on_release) before clean_state empties the state, or
    # it would go on writing into later tests.
    st.cache_resource.clear()
    assert not [t for t in threading.enumerate() if t.name == "dashboard-worker"]


@pytest.mark.usefixtures("dashboard_worker")
def test_dashboard() -> None:
    three_ticks = threading.Event()

    def on_tick(key: str, old: Any, new: Any) -> None:
        if new >= 3:
            three_ticks.set()

    unwatch = server_state.watch("ticks", on_tick)
    try:
        at = app("dashboard.py")
        assert three_ticks.wait(10), "the worker did not tick"
    finally:
        unwatch()
    at.run()
    assert not at.exception, at.exception
    assert int(metric(at, "Ticks")) >= 3
    assert set(server_state.peek("latest")) == {"cpu", "memory", "requests"}
    assert len(at.get("vega_lite_chart")) == 1
    # Each run reuses the one worker.
    app("dashboard.py")
    assert len([t for t in threading.enumerate() if t.name == "dashboard-worker"]) == 1


def test_fragment() -> None:
    at = app("fragment.py")
    assert "Full runs: 1" in texts(at)
    assert "Fragment runs: 1" in texts(at)
    assert metric(at, "Shared value") == "0"
    # AppTest reruns the whole app for a click in a fragment (no fragment-only runs).
    by_label(at.button, "Bump").click().run()
    assert not at.exception, at.exception
    assert metric(at, "Shared value") == "1"
    assert server_state.peek("frag_value") == 1


def test_update_transact() -> None:
    at = app("update_transact.py")
    assert (metric(at, "alice"), metric(at, "bob"), metric(at, "Total")) == ("100", "100", "200")

    by_label(at.number_input, "Amount").set_value(30)
    by_label(at.button, "Transfer alice → bob").click().run()
    assert not at.exception, at.exception
    assert (metric(at, "alice"), metric(at, "bob"), metric(at, "Total")) == ("70", "130", "200")

    by_label(at.number_input, "Amount").set_value(80).run()
    assert by_label(at.button, "Transfer alice → bob").disabled  # no overdraft

    by_label(at.button, "Add one").click().run()
    by_label(at.button, "Add one").click().run()
    assert "Clicks: 2" in texts(at)


def test_multipage() -> None:
    at = app("multipage/app.py")
    assert at.title[0].value == "Counter"
    by_label(at.button, "Increment").click().run()
    assert not at.exception, at.exception
    assert "Count: 1" in texts(at)

    at.switch_page("views/board.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Board"
    assert metric(at, "Count") == "1"
    by_label(at.text_input, "Note").set_value("standup at 10").run()
    assert server_state.peek("note") == "standup at 10"
    assert "**Note:** standup at 10" in texts(at)

    # A write from elsewhere shows on the next run, and the page stays Board.
    server_state.update("count", lambda n: n + 1)
    at.run()
    assert at.title[0].value == "Board"
    assert metric(at, "Count") == "2"


def test_typed_keys() -> None:
    at = app("typed_keys.py")
    assert metric(at, "Count") == "0"
    by_label(at.button, "-1").click().run()  # the validator refuses a count below zero
    assert not at.exception, at.exception
    assert metric(at, "Count") == "0" and "typed_count" not in server_state
    assert any("below zero" in w.value for w in at.warning)
    by_label(at.button, "+1").click().run()
    assert metric(at, "Count") == "1"
    for name in ("ada", "ada"):  # the second is refused: already on the list
        by_label(at.text_input, "Guest").set_value(name)
        by_label(at.button, "Add guest").click().run()
        assert not at.exception, at.exception
    assert server_state.peek("typed_guests") == ["ada"]
    assert any("already on the list" in w.value for w in at.warning)


def test_inspector() -> None:
    at = app("inspector.py")
    by_label(at.button, "+1").click().run()
    by_label(at.button, "Say hello").click().run()
    assert not at.exception, at.exception
    assert server_state.peek("count") == 1 and server_state.peek("messages") == ["hello #1"]
    token = server_state.peek("api_token")
    assert not [b for b in at.button if b.label.startswith("Revert to #")]  # read-only by default
    by_label(at.toggle, "Admin (may revert)").set_value(True).run()
    reverts = [b for b in at.button if b.label.startswith("Revert to #")]
    assert reverts, [b.label for b in at.button]
    assert token not in repr(at._tree)  # the private value is nowhere on the page
    seq = server_state.history("api_token")[0].seq  # the commit that set the token
    by_label(at.button, f"Revert to #{seq}").click().run()  # back to when only the token was set
    assert not at.exception, at.exception
    assert "count" not in server_state and "messages" not in server_state
    assert server_state.peek("api_token") == token


def test_todo_table() -> None:
    at = app("todo_table.py")
    assert [c.value for c in at.caption] == ["2 of 3 left"]
    assert "todo" not in server_state  # the default is shown, not stored
    # Another tab's table shows here.
    server_state.todo = pd.DataFrame({"done": [True, True], "task": ["a", "b"], "owner": ["x", "y"]})
    at.run()
    assert not at.exception, at.exception
    assert [c.value for c in at.caption] == ["0 of 2 left"]
