"""Big values travel as patches (docs/replicas.md, "Big values travel as patches"), on a real
redis-server: an append to a long sequence or one entry set in a big map
sends the change, not the value, to Redis and to every other replica; Redis
keeps such a value item by item (a list per sequence key, a hash per map
key), a new replica's resync reads it whole and consistent, and whatever the
identity check cannot prove (a change at the front, a Redis copy that is not
what the patch was made for, the pickle serializer) goes whole.

Each test checks what a user of two replicas would: the other replica shows
the same value, a new replica reads the same value, the bytes Redis received
for a change are about the size of the change.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis
from pyrsistent import pmap, pvector
from redis_support import ConnectionKiller, RedisServer, wait_for

from server_state import ServerState


def _store(url: str, namespace: str, **options: Any) -> Any:
    from server_state._store import store_from_url

    options.setdefault("block_ms", 100)
    return store_from_url(url, namespace=namespace, **options)


@pytest.fixture
def namespace() -> str:
    return f"patches-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@contextlib.contextmanager
def replicas(url: str, namespace: str, n: int = 2, **options: Any) -> Iterator[list[ServerState]]:
    states = [ServerState(_store(url, namespace, **options)) for _ in range(n)]
    try:
        yield states
    finally:
        for state in states:
            store_of(state).close()


def store_of(state: ServerState) -> Any:
    """The store (over a ``RedisCommitter``) behind ``state``."""
    return state._store


def appending(item: Any) -> Callable[[Any], Any]:
    return lambda v: v.append(item)


def setting(key: Any, value: Any) -> Callable[[Any], Any]:
    return lambda m: m.set(key, value)


def grown(state: ServerState, n: int) -> Callable[[], bool]:
    return lambda: len(state["log"]) > n


def settle(raw: redis.Redis, *states: ServerState) -> None:
    """Until every mirror has every commit Redis has."""
    for state in states:
        store_of(state).committer.open()
    store = store_of(states[0])
    seq = int(raw.hget(store.committer.names.meta, "seq") or 0)
    wait_for(
        lambda: all(store_of(s).position() >= seq for s in states), what=f"the mirrors to reach seq {seq}"
    )


def bytes_in(raw: redis.Redis) -> int:
    return int(raw.info("stats")["total_net_input_bytes"])


def message(i: int) -> dict[str, Any]:
    return {"user": f"user{i % 7}", "text": f"message number {i}", "at": i}


def fresh_read(url: str, namespace: str, key: str) -> Any:
    """``key`` as a replica started now reads it (its first resync)."""
    with replicas(url, namespace, 1) as (late,):
        return late[key]


# -- sequences -------------------------------------------------------------------------


def test_an_append_to_a_long_pvector_sends_the_message_not_the_log(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["log"] = pvector(message(i) for i in range(10_000))
        settle(raw, a, b)
        whole = raw.llen(store_of(a).committer.names.list + "log")
        assert whole == 10_000  # kept item by item
        before = bytes_in(raw)
        for i in range(10_000, 10_020):
            a.update("log", appending(message(i)))
        per_append = (bytes_in(raw) - before) / 20
        settle(raw, a, b)
        assert b["log"] == a["log"] == [message(i) for i in range(10_020)]
        # ~50 bytes of message, plus the commit's keys, versions and ids
        assert per_append < 2_000, per_append
        assert store_of(a).committer.patched == 20
    assert fresh_read(redis_url, namespace, "log") == [message(i) for i in range(10_020)]


def test_the_classic_list_plus_item_assigned_back_travels_as_a_patch(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["msgs"] = [message(i) for i in range(5_000)]
        settle(raw, a, b)
        before = bytes_in(raw)
        for i in range(5_000, 5_010):
            a["msgs"] = a["msgs"] + [message(i)]
        assert (bytes_in(raw) - before) / 10 < 2_000
        assert store_of(a).committer.patched == 10
        settle(raw, a, b)
        assert b["msgs"] == [message(i) for i in range(5_010)]
        assert type(b["msgs"]) is type(a["msgs"])
    assert fresh_read(redis_url, namespace, "msgs") == [message(i) for i in range(5_010)]


def test_changes_at_the_end_are_patches_and_a_change_at_the_front_goes_whole(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["v"] = pvector(range(1_000))
        a["l"] = list(range(1_000))
        expected_v: list[Any] = list(range(1_000))
        expected_l: list[Any] = list(range(1_000))
        a.update("v", lambda v: v.set(999, "last"))  # a change at the end
        expected_v[999] = "last"
        a.update("v", lambda v: v.delete(990, 1000))  # the end cut off
        del expected_v[990:]
        a["l"] = [*a["l"][:-5], "x", "y"]  # the end replaced
        expected_l[-5:] = ["x", "y"]
        assert store_of(a).committer.patched == 3
        a.update("v", lambda v: pvector(["first"]) + v)  # a change at the front: the whole value
        expected_v.insert(0, "first")
        a["l"] = ["first", *a["l"]]
        expected_l.insert(0, "first")
        assert store_of(a).committer.patched == 3
        a.update("v", lambda v: v.append("after"))  # and patches again after it
        expected_v.append("after")
        assert store_of(a).committer.patched == 4
        settle(raw, a, b)
        assert b["v"] == a["v"] == expected_v
        assert b["l"] == a["l"] == expected_l
        assert raw.llen(store_of(a).committer.names.list + "v") == len(expected_v)
    assert fresh_read(redis_url, namespace, "v") == expected_v
    assert fresh_read(redis_url, namespace, "l") == expected_l


# -- maps ------------------------------------------------------------------------------


def test_one_entry_set_in_a_big_map_sends_the_entry(redis_url: str, namespace: str, raw: redis.Redis) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["board"] = pmap({f"player{i}": i for i in range(10_000)})
        settle(raw, a, b)
        assert raw.hlen(store_of(a).committer.names.hash + "board") == 10_000
        before = bytes_in(raw)
        for i in range(20):
            a.update("board", setting(f"player{i}", -i - 1))
        assert (bytes_in(raw) - before) / 20 < 2_000
        a.update("board", lambda m: m.remove("player9999").set("newcomer", 1))
        assert store_of(a).committer.patched == 21
        expected = {f"player{i}": -i - 1 if i < 20 else i for i in range(9_999)} | {"newcomer": 1}
        settle(raw, a, b)
        assert b["board"] == a["board"] == expected
        assert raw.hlen(store_of(a).committer.names.hash + "board") == len(expected)
    assert fresh_read(redis_url, namespace, "board") == expected


def test_a_map_key_replaced_by_an_equal_key_of_another_type_goes_whole(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["m"] = pmap({i: str(i) for i in range(1_000)})
        a.update("m", lambda m: m.remove(1).set(True, "true"))  # True == 1, another field in Redis
        settle(raw, a, b)
        assert b["m"] == a["m"]
        assert raw.hlen(store_of(a).committer.names.hash + "m") == 1_000
    late = fresh_read(redis_url, namespace, "m")
    assert late == {**{i: str(i) for i in range(2, 1_000)}, 0: "0", True: "true"}


# -- what cannot be proved goes whole ------------------------------------------------------


def test_a_patch_of_a_redis_copy_that_differs_is_sent_whole(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["log"] = pvector(range(500))
        settle(raw, a, b)
        raw.rpush(
            store_of(a).committer.names.list + "log", b"\x00"
        )  # Redis' copy is not what the mirrors hold
        a.update("log", lambda v: v.append(500))
        assert store_of(a).committer.patched == 0  # refused by the commit script: sent whole
        settle(raw, a, b)
        assert raw.llen(store_of(a).committer.names.list + "log") == 501
        assert b["log"] == a["log"] == list(range(501))
    assert fresh_read(redis_url, namespace, "log") == list(range(501))


def test_small_values_and_pickles_stay_whole(redis_url: str, namespace: str, raw: redis.Redis) -> None:
    with replicas(redis_url, namespace, 1) as (a,):
        a["small"] = list(range(10))
        assert cast(bytes, raw.hget(store_of(a).committer.names.data, "small"))[:1] == b"M"
        a["big"] = list(range(1_000))
        assert raw.hget(store_of(a).committer.names.data, "big") == b"Ll"
        del a["big"]
        assert not raw.exists(store_of(a).committer.names.list + "big")
    with replicas(redis_url, namespace + "-p", 2, serializer="pickle", signing_key="k") as (p, q):
        p["big"] = list(range(1_000))
        p["big"] = p["big"] + [1_000]
        assert store_of(p).committer.patched == 0
        assert cast(bytes, raw.hget(store_of(p).committer.names.data, "big"))[:1] == b"P"
        settle(raw, p, q)
        assert q["big"] == list(range(1_001))


def test_a_value_shrunk_below_the_threshold_and_grown_again_reads_right(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["l"] = list(range(100))
        a["l"] = [str(i) for i in range(10)]  # new and small: whole again
        assert not raw.exists(store_of(a).committer.names.list + "l")
        a["l"] = list(range(100))
        a["l"] = list(range(10))  # the same first ten ints: a patch cutting the end
        assert raw.llen(store_of(a).committer.names.list + "l") == 10
        a["l"] = list(range(200))
        a["l"] = a["l"] + [200]
        settle(raw, a, b)
        assert b["l"] == list(range(201))
    assert fresh_read(redis_url, namespace, "l") == list(range(201))


# -- concurrency, faults, resync --------------------------------------------------------------


def test_appends_from_three_replicas_while_connections_die_are_exact(
    fresh_redis: RedisServer, namespace: str
) -> None:
    url = fresh_redis.url
    raw = fresh_redis.client()
    per_thread = 40
    with replicas(url, namespace, 3) as states:
        states[0]["chat"] = pvector(("seed", i) for i in range(200))
        settle(raw, *states)
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def writer(state: ServerState, name: str) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    state.update("chat", appending((name, i)))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=writer, args=(state, f"r{r}t{t}"))
            for r, state in enumerate(states)
            for t in range(2)
        ]
        with ConnectionKiller(fresh_redis, interval=0.05) as killer:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        assert not errors, errors
        assert killer.kills > 0
        settle(raw, *states)
        chat = states[0]["chat"]
        assert len(chat) == 200 + 6 * per_thread  # no lost and no doubled append
        for name in (f"r{r}t{t}" for r in range(3) for t in range(2)):
            assert [item[1] for item in chat if item[0] == name] == list(range(per_thread))  # in order
        assert states[1]["chat"] == states[2]["chat"] == chat
        assert raw.llen(store_of(states[0]).committer.names.list + "chat") == len(chat)
    assert fresh_read(url, namespace, "chat") == chat


def test_a_replica_that_missed_patches_resyncs_to_the_full_value(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["log"] = pvector(range(1_000))
        a["board"] = pmap({i: i for i in range(1_000)})
        settle(raw, a, b)
        resyncs = store_of(b).committer.resyncs
        store_of(b).close()  # b misses what follows
        for i in range(1_000, 1_050):
            a.update("log", appending(i))
            a.update("board", setting(i % 10, -i))
        raw.xtrim(store_of(a).committer.names.log, maxlen=0)  # and the stream no longer has it
        c = ServerState(_store(redis_url, namespace))
        try:
            a.update("log", lambda v: v.append("last"))
            settle(raw, a, c)
            assert c["log"] == a["log"] == [*range(1_050), "last"]
            assert c["board"] == a["board"]
            # an incremental resync (same epoch) of a mirror that has the values
            store_of(c).committer.resync()
            assert c["log"] == a["log"]
        finally:
            store_of(c).close()
        assert resyncs >= 1


def test_new_replicas_read_a_consistent_log_while_it_grows(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace, 1) as (a,):
        a["log"] = pvector(range(2_000))
        stop = threading.Event()
        appended: list[int] = []

        def writer() -> None:
            i = 2_000
            while not stop.is_set():
                a.update("log", appending(i))
                appended.append(i)
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(5):
                with replicas(redis_url, namespace, 1) as (late,):
                    first = late["log"]
                    assert first == list(range(len(first)))  # a state some commit left, whole
                    wait_for(grown(late, len(first) + 5), what="appends to arrive")
                    assert late["log"] == list(range(len(late["log"])))
        finally:
            stop.set()
            thread.join(30)
        assert appended
        assert fresh_read(redis_url, namespace, "log") == list(range(2_000 + len(appended)))


def test_the_atomic_script_reads_the_same_state_as_the_optimistic_read(
    redis_url: str, namespace: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server_state.backends.redis import _follower as backend

    with replicas(redis_url, namespace, 1) as (a,):
        a["log"] = pvector(range(1_000))
        a["board"] = pmap({i: str(i) for i in range(1_000)})
        a["small"] = [1, 2, 3]
        a.update("log", appending("x"))
        expected = {k: a[k] for k in ("log", "board", "small")}
    monkeypatch.setattr(backend, "WATCH_TRIES", 0)  # every resync is the script
    with replicas(redis_url, namespace, 1) as (late,):
        assert {k: late[k] for k in ("log", "board", "small")} == expected
        late.update("log", appending("y"))  # and its layout is known: a patch
        assert store_of(late).committer.patched == 1


def test_a_map_with_keys_of_other_types_changes_whole_and_reads_right(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        a["m"] = pmap({frozenset({i, -i, i + 0.5}): i for i in range(500)})
        a.update("m", lambda m: m.set(frozenset({7, -7, 7.5}), "seven").set(frozenset({"new"}), 1))
        assert store_of(a).committer.patched == 0  # a frozenset may encode its items in another order: whole
        a.update("m", lambda m: m.set(frozenset({8, -8, 8.5}), "eight"))
        settle(raw, a, b)
        assert b["m"] == a["m"]
        expected = a["m"]
    assert fresh_read(redis_url, namespace, "m") == expected


def test_a_big_value_whose_staged_items_were_lost_is_staged_again(
    redis_url: str, namespace: str, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with replicas(redis_url, namespace) as (a, b):
        store = store_of(a)
        stage = store.committer.stage
        calls: list[str] = []

        def lossy(name: str, ops: Any, stages: Any) -> None:
            calls.append(name)
            stage(name, ops, stages)
            if len(calls) == 1:
                raw.delete(*(name + k for k in stages))  # gone before the script ran (expired, say)

        monkeypatch.setattr(store.committer, "stage", lossy)
        a["log"] = [message(i) for i in range(1_000)]
        assert len(calls) == 2  # the script said the items were missing: staged again
        settle(raw, a, b)
        assert b["log"] == [message(i) for i in range(1_000)]
        assert not raw.keys("*:stage:*")  # renamed into place, nothing left behind
    assert fresh_read(redis_url, namespace, "log") == [message(i) for i in range(1_000)]
