"""One contract, every backend: memory, fakeredis and a real redis-server.

Each test gets two handles on one state, ``a`` and ``b``: for the memory
backend they are the same ``ServerState``; for Redis they are two replicas
(two stores, two mirrors, two followers) of one namespace. What one writes,
the other reads once its mirror has the commit: ``settled`` waits for that
(a poll of the real condition, with a deadline), never a sleep.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyrsistent import pvector

from server_state import (
    MISSING,
    ServerState,
    ServerStateLock,
    ServerStateTypeError,
    _check_key,
)
from server_state._values import is_persistent, read_form, unchanged

BACKENDS = ("memory", "fakeredis", "redis", "sqlite")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Pair:
    """What an app might store that no codec knows."""

    def __init__(self, x: int) -> None:
        self.x = x


class Replicas:
    def __init__(self, kind: str, make: Callable[[], ServerState]) -> None:
        self.kind = kind
        self.a = make()
        self.b = self.a if kind == "memory" else make()
        self.states = [self.a] if self.a is self.b else [self.a, self.b]

    @property
    def shared(self) -> bool:
        return self.a is not self.b

    def lock(self, state: ServerState) -> ServerStateLock:
        return ServerStateLock(state._locks, _check_key, state.keys, state._has)

    def settled(self, timeout: float = 10.0) -> None:
        """Until every mirror is at the same commit as the source of truth."""
        if not self.shared:
            return
        for state in self.states:
            state._store.committer.open()  # a replica nobody used yet starts
        deadline = time.monotonic() + timeout
        while True:
            seq = self.a._store.committer.head()
            if all(s._store.position() >= seq for s in self.states):  # type: ignore[attr-defined]
                return
            assert time.monotonic() < deadline, "the mirrors did not catch up with Redis"
            time.sleep(0.002)  # polling the condition above

    def close(self) -> None:
        for state in self.states:
            state._store.close()


@pytest.fixture(params=BACKENDS)
def replicas(request: pytest.FixtureRequest) -> Iterator[Replicas]:
    yield from _replicas(request)


@pytest.fixture(params=BACKENDS[1:])
def shared_replicas(request: pytest.FixtureRequest) -> Iterator[Replicas]:
    """Only the backends with replicas (each has its own copy to encode into)."""
    yield from _replicas(request)


def _replicas(request: pytest.FixtureRequest) -> Iterator[Replicas]:
    kind = request.param
    if kind == "memory":
        pair = Replicas(kind, ServerState)
    elif kind == "fakeredis":
        import fakeredis

        from server_state._store import store_from_url

        server = fakeredis.FakeServer()

        def make() -> ServerState:
            clients = (fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server))
            return ServerState(store_from_url("redis://fakeredis", clients=clients, block_ms=50))

        pair = Replicas(kind, make)
    elif kind == "sqlite":
        url = f"sqlite:///{request.getfixturevalue('tmp_path')}/state.db"
        from server_state._store import store_from_url

        pair = Replicas(kind, lambda: ServerState(store_from_url(url)))
    else:
        url = request.getfixturevalue("redis_url")
        from server_state._store import store_from_url

        pair = Replicas(kind, lambda: ServerState(store_from_url(url, namespace="contract", block_ms=200)))
    yield pair
    pair.close()


BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

VALUES: dict[str, Any] = {
    "int": 7,
    "big int": 2**80,
    "negative zero": -0.0,
    "text": "grüße",
    "bytes": b"\x00\xff",
    "none": None,
    "list": [1, "two", 3.0, None],
    "tuple": (1, (2, 3)),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a"}),
    "dict with odd keys": {1: "int", (1, 2): "tuple", Color.RED: "enum", datetime.date(2026, 1, 2): "date"},
    "ordered dict": {"b": 1, "a": 2},
    "decimal": decimal.Decimal("2.50"),
    "aware datetime": datetime.datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
    "utc datetime": datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.UTC),
    "timedelta": datetime.timedelta(days=1, microseconds=3),
    "enum": Color.BLUE,
    "numpy float": np.float64(0.25),
    "numpy int": np.int64(-3),
    "numpy array": np.arange(12, dtype=np.int32).reshape(3, 4),
    "timestamp": pd.Timestamp("2026-01-01 12:00", tz="UTC"),
    "frame": pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}, index=[10, 20, 30]),
    "chat": [
        {"user": f"u{i}", "text": "hi " * 5, "at": datetime.datetime(2026, 1, 1, 0, i)} for i in range(50)
    ],
    "pvector": pvector(range(2000)),
}


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, pd.DataFrame):
        return bool(type(y) is pd.DataFrame and x.equals(y) and list(x.index) == list(y.index))
    if isinstance(x, np.ndarray):
        return bool(type(y) is np.ndarray and x.dtype == y.dtype and np.array_equal(x, y))
    if is_persistent(x):  # told apart by identity in one process: compare what they hold
        return type(y) is type(x) and x == y and unchanged(read_form(x, "v"), read_form(y, "v"))
    return unchanged(x, y)


@pytest.mark.parametrize("name", list(VALUES))
def test_a_value_reads_back_the_same_in_every_replica(replicas: Replicas, name: str) -> None:
    a, b = replicas.a, replicas.b
    a["v"] = VALUES[name]
    replicas.settled()
    for state in replicas.states:
        assert _same(state.peek("v"), a.peek("v")), (name, state.peek("v"))
    stored = a._store.entry("v")[0]
    assert _same(b._store.entry("v")[0], stored)
    assert type(b._store.entry("v")[0]) is type(stored)


def test_equal_writes_change_nothing_anywhere_and_visible_differences_do(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    a["price"] = decimal.Decimal("2.5")
    replicas.settled()
    version = b.version("price")
    b["price"] = decimal.Decimal("2.5")
    a["price"] = decimal.Decimal("2.5")
    replicas.settled()
    assert a.version("price") == b.version("price") == version
    b["price"] = decimal.Decimal("2.50")  # == but not the same to a reader
    replicas.settled()
    assert str(a.peek("price")) == "2.50"
    assert a.version("price") > version


def test_versions_only_grow_across_delete_and_recreate(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    seen: list[int] = []
    for i in range(5):
        a["user:1"] = {"n": i}
        replicas.settled()
        seen.append(b.version("user:1"))
        del b["user:1"]
        replicas.settled()
        assert "user:1" not in a
        seen.append(a.version("user:1"))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_per_user_keys_created_and_deleted_leave_only_the_live_ones(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    for i in range(300):
        (a if i % 2 else b)[f"user:{i}"] = i
        if i % 3:
            del (b if i % 2 else a)[f"user:{i}"]
    replicas.settled()
    live = [f"user:{i}" for i in range(300) if not i % 3]
    for state in replicas.states:
        assert sorted(state.keys()) == sorted(live)
        assert len(state) == len(live)


def test_concurrent_updates_from_every_replica_lose_nothing(replicas: Replicas) -> None:
    threads = [
        threading.Thread(
            target=lambda s=state: [s.update("c", lambda v: v + 1, default=0) for _ in range(150)]
        )
        for state in replicas.states * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replicas.settled()
    total = 150 * len(threads)
    assert [state.peek("c") for state in replicas.states] == [total] * len(replicas.states)


def test_the_seed_counter_with_its_lock_is_exact_across_replicas(replicas: Replicas) -> None:
    replicas.a["count"] = 0
    replicas.settled()

    def click(state: ServerState, times: int) -> None:
        lock = replicas.lock(state)
        for _ in range(times):
            with lock["count"]:
                state.count += 1

    threads = [threading.Thread(target=click, args=(state, 60)) for state in replicas.states * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replicas.settled()
    assert [state.peek("count") for state in replicas.states] == [60 * len(threads)] * len(replicas.states)


def test_the_mapping_methods_commit_once_and_read_alike_in_every_replica(replicas: Replicas) -> None:
    """update(mapping), pop, popitem and clear: one commit each (one history
    record, every key at its seq, each watcher call once), seen the same by
    the other replica; the lock mapping lists the keys set there too."""
    a, b = replicas.a, replicas.b
    seen: list[tuple[str, int]] = []
    b.peek("x")  # started
    b.watch(None, lambda key, old, new, version: seen.append((key, version)), with_version=True)

    def last_commit(state: ServerState, keys: set[str]) -> int:
        [commit] = state.history(limit=1)
        assert set(commit.keys) == keys
        assert all(state.version(k) == commit.seq for k in keys)
        return commit.seq

    a.update({"x": 1, "y": [1, 2]}, z="z")
    replicas.settled()
    seq = last_commit(b, {"x", "y", "z"})
    assert b == {"x": 1, "y": [1, 2], "z": "z"} and b.keys() == ["x", "y", "z"]
    assert "y" in replicas.lock(b) and sorted(replicas.lock(b)) == ["x", "y", "z"]
    b.update({"x": 1, "y": [1, 2]})  # equal: no commit
    assert b.pop("y") == [1, 2]
    replicas.settled()
    assert last_commit(a, {"y"}) == seq + 1
    assert a.popitem() == ("z", "z")
    replicas.settled()
    assert last_commit(b, {"z"}) == seq + 2
    a["w"] = 0
    b.clear()
    replicas.settled()
    assert last_commit(a, {"x", "w"}) == seq + 4
    assert a == b == {} and len(a) == len(b) == 0
    assert [v for _, v in seen] == [seq] * 3 + [seq + 1, seq + 2, seq + 3, seq + 4, seq + 4]
    with pytest.raises(KeyError):
        b.pop("x")
    with pytest.raises(KeyError):
        a.popitem()


@contextmanager
def follower_paused(store: Any) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The store's follower held at its next commit from Redis (``held`` is
    then set) until ``release`` is set or the block ends: a mirror that lags."""
    held, release = threading.Event(), threading.Event()
    committer = store.committer
    # Redis: the stream follower, before its next entry; SQLite: the
    # follower thread, before its next look at the file.
    follower, name = (
        (committer.follower, "follow_entry") if hasattr(committer, "follower") else (committer, "follow_once")
    )
    original = getattr(follower, name)

    def paused(*args: Any) -> Any:
        held.set()
        release.wait(10)
        return original(*args)

    setattr(follower, name, paused)
    try:
        yield held, release
    finally:
        release.set()
        setattr(follower, name, original)


def test_a_pop_on_a_lagging_mirror_finds_the_key(shared_replicas: Replicas) -> None:
    """b has not yet seen a's new key: pop without a default asks Redis
    before saying the key is missing (as del does)."""
    replicas = shared_replicas
    a, b = replicas.a, replicas.b
    b.peek("x")  # started
    store = b._store
    asked = threading.Event()
    confirm = store.committer.confirm

    def confirming(key: str, version: int) -> bool:
        asked.set()
        return confirm(key, version)

    store.committer.confirm = confirming
    got: list[Any] = []
    try:
        with follower_paused(store) as (held, release):
            a["k"] = 5
            assert held.wait(10)
            assert b._store.entry("k")[0] is MISSING  # b lags
            popper = threading.Thread(target=lambda: got.append(b.pop("k")))
            popper.start()
            assert asked.wait(10)  # b, not having the key, asked Redis before answering
            release.set()
            popper.join(10)
            assert not popper.is_alive()
    finally:
        store.committer.confirm = confirm
    replicas.settled()
    assert got == [5] and "k" not in a and "k" not in b


def test_transfers_keep_their_invariant_in_every_snapshot(replicas: Replicas) -> None:
    replicas.a.transact(lambda s: s.set("a", 500).set("b", 500))
    replicas.settled()
    broken: list[tuple[int, int]] = []
    done = threading.Event()

    def transfer(state: ServerState, times: int) -> None:
        for i in range(times):
            amount = 1 + i % 3
            state.transact(lambda s, n=amount: s.set("a", s["a"] - n).set("b", s["b"] + n))

    def watch(state: ServerState) -> None:
        while not done.is_set():
            snap = state.snapshot("a", "b")
            if snap["a"] + snap["b"] != 1000:
                broken.append((snap["a"], snap["b"]))

    watchers = [threading.Thread(target=watch, args=(state,)) for state in replicas.states]
    writers = [threading.Thread(target=transfer, args=(state, 80)) for state in replicas.states * 2]
    for t in watchers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in watchers:
        t.join()
    replicas.settled()
    moved = sum(1 + i % 3 for i in range(80)) * len(writers)
    for state in replicas.states:
        assert (state.peek("a"), state.peek("b")) == (500 - moved, 500 + moved)
    assert broken == []


def test_watchers_see_every_commit_of_the_other_replica_in_order(replicas: Replicas) -> None:
    a, b = replicas.a, replicas.b
    got: list[tuple[Any, int]] = []
    b.peek("w")  # started
    b.watch(["w"], lambda key, old, new, version: got.append((new, version)), with_version=True)
    for i in range(20):
        a["w"] = i
    replicas.settled()
    assert [value for value, _ in got] == list(range(20))
    versions = [version for _, version in got]
    assert versions == sorted(versions) and versions[-1] == b.version("w")


def test_missing_is_refused_and_changes_nothing(replicas: Replicas) -> None:
    a = replicas.a
    a["k"] = 1
    with pytest.raises(ServerStateTypeError, match="'k'"):
        a["k"] = MISSING
    replicas.settled()
    assert [s.peek("k") for s in replicas.states] == [1] * len(replicas.states)


def test_a_value_redis_cannot_carry_is_refused_naming_the_key_and_path(shared_replicas: Replicas) -> None:
    replicas = shared_replicas
    a, b = replicas.a, replicas.b
    a["cfg"] = {"models": [1, 2]}
    replicas.settled()
    version = a.version("cfg")
    with pytest.raises(TypeError, match=r"cfg.*models.*Pair") as raised:
        a["cfg"] = {"models": [1, 2, Pair(3)]}
    assert isinstance(raised.value, ServerStateTypeError)
    replicas.settled()
    assert a.version("cfg") == b.version("cfg") == version
    assert b.peek("cfg") == {"models": [1, 2]}


def test_an_equal_write_on_a_lagging_mirror_is_not_dropped(shared_replicas: Replicas) -> None:
    """b still shows x=1 while a already wrote x=2: b writing 1 must land
    (last writer wins), not be taken for 'unchanged' against b's old copy."""
    replicas = shared_replicas
    a, b = replicas.a, replicas.b
    a["x"] = 1
    replicas.settled()
    with follower_paused(b._store) as (held, release):
        a["x"] = 2
        assert held.wait(10)
        assert b.peek("x") == 1  # b lags
        writer = threading.Thread(target=lambda: b.__setitem__("x", 1))
        writer.start()
        release.set()
        writer.join(10)
        assert not writer.is_alive()
    replicas.settled()
    assert a.peek("x") == b.peek("x") == 1
