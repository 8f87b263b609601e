"""Keys that expire (issue 21): a lifetime given when writing, declared for a
family of keys or on a typed key; the expiry is a commit like any other, lands
exactly once among replicas, survives a restart on SQLite, and never swallows a
write that crosses it.

Lifetimes here are a few tenths of a second. Tests wait for the expiry itself
(a watcher's event), and where they say something about time they compare the
commit's time with the deadline, so a slow machine makes them slower, never
wrong.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_backend_contract import Replicas, replicas, shared_replicas  # noqa: F401  (fixtures)

from server_state import MISSING, ServerState, ServerStateKeyError, ServerStateTypeError
from server_state._expiry import DEADLINE
from server_state._store import MemoryStore, store_from_url

WAIT = 15.0  # seconds an expiry may take on a loaded machine before the test fails


class Deleted(threading.Event):
    """Set when a key is deleted (its expiry, or any delete); ``causes`` are
    what the watcher was told of each delete."""

    def __init__(self) -> None:
        super().__init__()
        self.causes: list[str] = []


def expired_event(state: ServerState, key: str) -> Deleted:
    event = Deleted()

    def seen(k: str, old: Any, new: Any, cause: str) -> None:
        if new is MISSING:
            event.causes.append(cause)
            event.set()

    state.watch(key, seen, with_cause=True)
    return event


def expiries(state: ServerState, key: str) -> list[Any]:
    return [c for c in state.history(key) if c.expired]


@pytest.fixture
def state() -> Iterator[ServerState]:
    s = ServerState(MemoryStore())
    yield s
    s._store.close()


# -- in one process ------------------------------------------------------------------


def test_an_idle_key_expires_as_a_commit_that_history_watchers_and_revert_see(state: ServerState) -> None:
    gone = expired_event(state, "draft")
    state["other"] = 1
    state.set("draft", {"text": "hello"}, idle=1.0)
    written = state.version("draft")
    deadline = state.deadline("draft")
    assert deadline is not None
    assert list(state) == ["other", "draft"] and len(state) == 2  # the deadline is not a key of the app
    assert gone.wait(WAIT)
    assert gone.causes == ["expired"]  # a watcher is told why
    assert "draft" not in state and list(state) == ["other"]
    assert state.version("draft") == written + 1  # one commit: the version advanced once
    (commit,) = expiries(state, "draft")
    assert commit.keys == ("draft",) and commit.deleted("draft")
    assert commit.origin == "expired (idle 1 s)"
    assert commit.time >= deadline
    assert commit.before("draft") == {"text": "hello"}
    # revert brings it back, with its idle lifetime starting again from now.
    assert state.revert(commit.seq - 1) == ["draft"]
    assert state["draft"] == {"text": "hello"}
    again = state.deadline("draft")
    assert again is not None and again > commit.time
    state.expire("draft")  # the lifetime taken away: it stays
    assert state.deadline("draft") is None and state["draft"] == {"text": "hello"}


def test_a_change_before_the_deadline_moves_it_on_and_reading_does_not(state: ServerState) -> None:
    gone = expired_event(state, "k")
    state.set("k", 1, idle=1.0)
    first = state.deadline("k")
    assert first is not None
    for _ in range(3):
        state["k"]  # reads: no effect on the deadline
    assert state.deadline("k") == first
    time.sleep(0.05)  # (time must pass for the deadline to move)
    state["k"] = 2  # a plain assignment: the key keeps its idle lifetime, from now
    second = state.deadline("k")
    assert second is not None and second > first
    assert gone.wait(WAIT)
    (commit,) = expiries(state, "k")
    assert commit.time >= second and commit.before("k") == 2


def test_update_setdefault_and_a_fixed_time(state: ServerState) -> None:
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    gone = [expired_event(state, k) for k in ("a", "b", "c")]
    state.update("a", lambda v: v + 1, default=0, idle=1.0)
    assert state.setdefault("b", "x", at=at) == "x"
    assert state.setdefault("b", "y", idle=999) == "x"  # already set: nothing changes, not its lifetime
    assert state.deadline("b") == at
    state["c"] = pd.DataFrame({"x": [1, 2]})
    state.expire("c", at=at.timestamp())
    state["c"] = pd.DataFrame({"x": [1, 2, 3]})  # a fixed time does not move on a change
    assert state.deadline("c") == at
    assert all(event.wait(WAIT) for event in gone)
    assert not any(k in state for k in ("a", "b", "c"))
    assert [c.origin for c in expiries(state, "b")] == ["expired (its time)"]


def test_a_family_of_keys_and_a_typed_key(state: ServerState) -> None:
    state.expire_keys("room/", idle=1.0)
    typed = state.key("typing", str, idle=1.0)
    gone = [expired_event(state, k) for k in ("room/1", "typing")]
    state["room/1"] = ["hi"]
    state["lobby"] = ["stays"]
    typed.set("Ann")
    assert state.deadline("room/1") is not None and state.deadline("typing") is not None
    assert state.deadline("lobby") is None
    assert all(event.wait(WAIT) for event in gone)
    assert list(state) == ["lobby"]
    state.expire_keys("room/")  # withdrawn: new keys of the family live on
    state["room/2"] = []
    assert state.deadline("room/2") is None


def test_a_delete_takes_the_deadline_with_it_and_a_new_key_gets_none(state: ServerState) -> None:
    deleted = expired_event(state, "k")
    state.set("k", 1, idle=60)
    del state["k"]
    assert deleted.causes == ["write"]
    assert state.deadline("k") is None
    state["k"] = 2
    assert state.deadline("k") is None
    state.set("t", 1, idle=60)
    state.transact(lambda s: s.remove("t"))
    assert state.deadline("t") is None and DEADLINE + "t" not in state._store.mirror.latest
    state.set("u", 1, idle=60)
    state.clear()
    assert len(state) == 0 and not state._store.mirror.latest


def test_an_expiry_crossing_an_update_never_loses_the_write(state: ServerState) -> None:
    """fn reads the live key, the key expires meanwhile, fn's result must not
    vanish with it: the update runs again on the absent key and creates it."""
    gone = expired_event(state, "n")
    state.set("n", 1, idle=1.0)
    calls: list[Any] = []

    def inc(v: int) -> int:
        calls.append(v)
        if len(calls) == 1:
            assert gone.wait(WAIT)  # the expiry commits while fn runs
        return v + 1

    assert state.update("n", inc, default=100) == 101
    assert calls == [1, 100]  # first on the live key, then on the default
    assert state["n"] == 101
    assert state.deadline("n") is None  # created again as this update asked: without a lifetime
    (commit,) = expiries(state, "n")
    assert state.version("n") > commit.seq


def test_bad_lifetimes_are_refused_with_the_store_unchanged(state: ServerState) -> None:
    naive = datetime.datetime(2030, 1, 1)
    for kwargs, words in (
        ({"idle": -1}, "more than 0"),
        ({"idle": float("inf")}, "finite"),
        ({"idle": "60"}, "number of seconds"),
        ({"idle": 1, "at": 5.0}, "not both"),
        ({"at": naive}, "no time zone"),
        ({"at": "tomorrow"}, "aware datetime"),
    ):
        with pytest.raises(ServerStateTypeError, match=words):
            state.set("k", 1, **kwargs)
    assert "k" not in state and state.version("k") == 0
    with pytest.raises(ServerStateKeyError, match="give a lifetime"):
        state.expire("absent", idle=5)
    with pytest.raises(ServerStateKeyError, match="library's own"):
        state[DEADLINE + "k"] = 1
    with pytest.raises(ServerStateTypeError, match="non-empty str"):
        state.expire_keys("", idle=5)
    assert len(state._store.mirror.latest) == 0


# -- across replicas and processes ------------------------------------------------------


def test_an_expiry_lands_exactly_once_among_replicas(shared_replicas: Replicas) -> None:  # noqa: F811
    a, b = shared_replicas.a, shared_replicas.b
    shared_replicas.settled()
    events = [expired_event(s, f"k{i}") for s in (a, b) for i in range(5)]
    for i in range(5):
        (a if i % 2 else b).set(f"k{i}", i, idle=1.0)
    shared_replicas.settled()
    c0 = [a.version(f"k{i}") for i in range(5)]
    assert b._store.clock.pending() >= 1 and a._store.clock.pending() >= 1  # both clocks race
    assert all(event.wait(WAIT) for event in events)
    shared_replicas.settled()
    assert all(event.causes == ["expired"] for event in events)  # in the replica that expired it and the other
    for i in range(5):
        (commit,) = expiries(a, f"k{i}")  # one expiry commit, seen alike by both replicas
        assert [c.seq for c in expiries(b, f"k{i}")] == [commit.seq]
        assert a.version(f"k{i}") == b.version(f"k{i}") == commit.seq
        assert [c.seq for c in a.history(f"k{i}")] == [
            commit.seq,
            c0[i],
        ]  # set, then expired: nothing between
    assert len(a) == len(b) == 0


def test_an_update_in_one_replica_crossing_the_expiry_in_another(shared_replicas: Replicas) -> None:  # noqa: F811
    a, b = shared_replicas.a, shared_replicas.b
    gone = expired_event(a, "n")
    b.set("n", 1, idle=1.0)
    shared_replicas.settled()
    calls: list[int] = []

    def inc(v: int) -> int:
        calls.append(v)
        if len(calls) == 1:
            assert gone.wait(WAIT)
        return v + 1

    assert a.update("n", inc, default=100) == 101
    shared_replicas.settled()
    assert b["n"] == 101 and calls[0] == 1 and calls[-1] == 100
    assert len(expiries(b, "n")) == 1


def test_a_deadline_survives_a_restart_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    first = ServerState(store_from_url(url))
    first._store.clock.close()  # this process expires nothing: it is down before the deadlines
    first.set("soon", "x", idle=0.3)
    first.set("later", "y", idle=3600)
    first.set("passed", "z", idle=0.05)
    first["later"] = "y2"  # a change after its deadline was written: the deadline is its last change's
    due = first.deadline("later")
    assert due is not None and due > datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=3590)
    first._store.close()
    time.sleep(0.1)  # (time passes while no process is running)
    second = ServerState(store_from_url(url))
    gone = [expired_event(second, k) for k in ("soon", "passed")]
    again = second.deadline("later")  # from the history the log brought back: the same instant
    assert again is not None and abs((again - due).total_seconds()) < 0.05 and second["later"] == "y2"
    assert all(event.wait(WAIT) for event in gone)  # both fire in the new process
    assert "soon" not in second and "passed" not in second
    (commit,) = expiries(second, "soon")
    assert commit.origin.endswith(" · expired (idle 0.3 s)")  # by this process (a replica's name first)
    second._store.close()
