"""History: the last commits, the state after any of them, and going back."""

from __future__ import annotations

import threading

import pytest
from pyrsistent import pvector

from server_state import ServerState
from server_state._store import MemoryStore


@pytest.fixture
def state() -> ServerState:
    return ServerState(MemoryStore())


def test_history_lists_each_commit_newest_first_with_before_and_after(state: ServerState) -> None:
    state["a"] = 1
    state["log"] = ["hi"]
    state["log"] = [*state["log"], "there"]
    del state["a"]
    commits = state.history()
    assert [c.keys for c in commits] == [("a",), ("log",), ("log",), ("a",)]
    assert [c.seq for c in commits] == [4, 3, 2, 1]
    assert commits[0].deleted("a") and commits[0].before("a") == 1
    assert commits[1].before("log") == ["hi"] and commits[1].after("log") == ["hi", "there"]
    assert commits[3].created("a")
    assert all(c.origin == "thread MainThread" for c in commits)
    assert [c.seq for c in state.history("log")] == [3, 2]
    assert [c.seq for c in state.history(limit=1)] == [4]


def test_at_shows_the_state_after_each_commit(state: ServerState) -> None:
    state["a"] = 1
    state["b"] = 2
    state["a"] = 10
    del state["b"]
    assert dict(state.at(0)) == {}
    assert dict(state.at(1)) == {"a": 1}
    assert dict(state.at(2)) == {"a": 1, "b": 2}
    assert dict(state.at(3)) == {"a": 10, "b": 2}
    assert dict(state.at(4)) == {"a": 10}


def test_at_beyond_what_is_kept_says_what_is_kept(state: ServerState) -> None:
    state.configure(history=3)
    for i in range(10):
        state["n"] = i
    assert state.at(8)["n"] == 7  # commit 1 set n = 0
    assert state.at(7)["n"] == 6  # the state before the oldest commit kept
    with pytest.raises(LookupError, match=r"commits 8\.\.10"):
        state.at(6)
    with pytest.raises(LookupError):
        state.at(11)


def test_revert_writes_the_old_values_back_as_a_new_commit(state: ServerState) -> None:
    state["a"] = 1
    state["b"] = 2
    state["a"] = 3
    state["c"] = 4
    changed = state.revert(2)
    assert sorted(changed) == ["a", "c"]
    assert dict(state.snapshot()) == {"a": 1, "b": 2}
    assert state.version("a") == 5  # versions only move forward
    assert state.history(limit=1)[0].seq == 5
    assert state.revert(5) == []  # already there: no commit
    assert state.history(limit=1)[0].seq == 5


def test_revert_of_named_keys_leaves_the_others(state: ServerState) -> None:
    state["a"] = 1
    state["b"] = 1
    state["a"] = 2
    state["b"] = 2
    assert state.revert(2, keys=["a"]) == ["a"]
    assert dict(state.snapshot()) == {"a": 1, "b": 2}


def test_history_of_a_growing_pvector_shares_structure(state: ServerState) -> None:
    state.configure(history=1000)
    state.update("log", lambda v: v, default=pvector(range(1000)))
    for i in range(500):
        state.update("log", lambda v, i=i: v.append(i))
    old = state.at(state.history(limit=1)[0].seq - 250)
    assert len(old["log"]) == 1250


def test_commits_from_threads_are_all_recorded(state: ServerState) -> None:
    state.configure(history=10_000)

    def bump() -> None:
        for _ in range(200):
            state.update("n", lambda v: v + 1, default=0)

    threads = [threading.Thread(target=bump, name=f"w{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    commits = state.history("n")
    assert len(commits) == 800
    assert {c.origin for c in commits} == {f"thread w{i}" for i in range(4)}
    assert [c.after("n") for c in reversed(commits)] == list(range(1, 801))


def test_history_zero_keeps_nothing(state: ServerState) -> None:
    state.configure(history=0)
    state["a"] = 1
    assert state.history() == []
    with pytest.raises(LookupError):
        state.at(0)


def test_configure_refuses_a_history_bound_it_cannot_keep_and_keeps_the_old_one() -> None:
    """history_age=0 was taken for "not given" and silently ignored; a bound
    that cannot be kept is refused, naming it, and the history stays as it was."""
    state = ServerState()
    state.configure(history=50, history_age=30)
    for bad, what in (
        ({"history_age": 0}, "age"),
        ({"history_age": -1.5}, "age"),
        ({"history": -1}, "limit"),
    ):
        with pytest.raises(ValueError, match=f"history {what} must be"):
            state.configure(**bad)
        assert (state._store.history.limit, state._store.history.max_age) == (50, 30.0)
    state.configure(history_age=0.5)
    assert state._store.history.max_age == 0.5


def test_commits_of_the_librarys_own_keys_alone_do_not_push_the_apps_out() -> None:
    """A replica's heartbeat or a deadline moved on every few seconds must not
    leave an idle app with no history: such commits are kept aside, undone by
    at() and revert like any commit, never listed."""
    from server_state._keys import HIDDEN
    from server_state._store import MemoryStore

    state = ServerState(MemoryStore())
    state.configure(history=5)
    state["a"] = 1
    first = state.history()[0].seq
    state["a"] = 2
    for i in range(50):  # e.g. heartbeats
        state._store.set(HIDDEN + "beat", i)
    state["b"] = 3
    assert [c.keys for c in state.history()] == [("b",), ("a",), ("a",)]
    assert dict(state.at(first)) == {"a": 1}
    assert state._store.at(first).values.get(HIDDEN + "beat") is None  # undone too
    assert state.revert(first) == ["a", "b"]
    assert dict(state.items()) == {"a": 1}
    assert state._store.entry(HIDDEN + "beat")[0] == 49  # revert leaves the library's own keys alone
