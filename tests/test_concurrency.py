"""Concurrent use of the state, as real apps do it: every call is one
instant under concurrent writes and deletes, transactions under load (they
conflict only on what they touched and always finish), key locks and the
deadlocks between them, and per-user keys that come and go without leaving
anything behind.

Threads meet at barriers or wait for a condition with a deadline, never for
a fixed sleep.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pyrsistent import PMap
from test_store import run_threads

import server_state._locks as locks_module
from server_state import (
    ServerState,
    ServerStateDeadlockError,
    ServerStateError,
    ServerStateLock,
    _check_key,
)
from server_state._mirror import GONE_KEPT


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


# -- every call is one instant --------------------------------------------------


def test_setdefault_survives_a_concurrent_delete(fresh_state: ServerState) -> None:
    s = fresh_state
    stop = threading.Event()
    errors: list[BaseException] = []
    results: list[Any] = []

    def deleter() -> None:
        while not stop.is_set():
            with contextlib.suppress(KeyError):
                del s["k"]

    def caller() -> None:
        try:
            for i in range(20_000):
                results.append(s.setdefault("k", i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    run_threads([deleter, caller])
    assert not errors
    assert len(results) == 20_000
    assert all(isinstance(r, int) for r in results)


def test_items_and_values_never_fail_under_concurrent_deletes(fresh_state: ServerState) -> None:
    s = fresh_state
    for i in range(200):
        s[f"k{i}"] = i
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        i = 0
        while not stop.is_set():
            key = f"k{i % 200}"
            del s[key]
            s[key] = i % 200
            i += 1

    def reader() -> None:
        try:
            for _ in range(300):
                for key, value in s.items():
                    assert key == f"k{value}"
                assert all(isinstance(v, int) for v in s.values())
                assert len(dict(s.snapshot())) >= 199
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    run_threads([churn, reader])
    assert not errors, errors[0]


def test_items_show_one_instant_of_two_keys_that_change_together(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 500
    s["b"] = 500
    stop = threading.Event()
    seen: list[int] = []

    def mover() -> None:
        while not stop.is_set():
            s.transact(lambda m: m.set("a", m["a"] - 1).set("b", m["b"] + 1))

    def reader() -> None:
        try:
            for _ in range(2_000):
                pairs = dict(s.items())
                seen.append(pairs["a"] + pairs["b"])
                values = s.values()
                seen.append(values[0] + values[1])
        finally:
            stop.set()

    run_threads([mover, reader])
    assert set(seen) == {1000}


# -- transact costs what it touches, conflicts only there, always finishes ------------


def test_transact_is_not_retried_for_a_commit_to_a_key_it_never_touched(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"], s["b"], s["other"] = 10, 0, 0
    calls = [0]

    def fn(m: PMap[str, Any]) -> PMap[str, Any]:
        calls[0] += 1
        if calls[0] == 1:
            s["other"] = 1  # a commit elsewhere while fn runs
        return m.set("a", m["a"] - 1).set("b", m["b"] + 1)

    s.transact(fn)
    assert calls[0] == 1
    assert (s["a"], s["b"], s["other"]) == (9, 1, 1)


def test_transact_is_retried_when_a_key_it_read_changed(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"], s["rate"] = 10, 2
    calls = [0]

    def fn(m: PMap[str, Any]) -> PMap[str, Any]:
        calls[0] += 1
        if calls[0] == 1:
            s["rate"] = 3  # read by fn below: the first result is stale
        return m.set("a", m["a"] * m["rate"])

    s.transact(fn)
    assert calls[0] == 2
    assert s["a"] == 30


def test_transact_finishes_under_a_storm_of_writes_to_the_keys_it_uses(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"], s["b"] = 0, 0
    stop = threading.Event()
    writes = [0]

    def storm() -> None:
        while not stop.is_set():
            s["a"] = s.peek("a") + 1
            writes[0] += 1

    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    try:
        wait_for(lambda: writes[0] > 100)
        calls = [0]

        def fn(m: PMap[str, Any]) -> PMap[str, Any]:
            calls[0] += 1
            time.sleep(0.002)  # a slow fn: the storm always gets in between
            return m.set("b", m["a"])

        s.transact(fn)
    finally:
        stop.set()
        thread.join(10)
    assert 1 <= calls[0] <= 5  # a few optimistic attempts, then alone
    assert s["b"] <= s["a"]


def test_transact_returns_the_map_it_committed_not_later_commits(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 1
    s["x"] = 1
    committed = s.transact(lambda m: m.set("a", [1, 2]))
    s["x"] = 2
    assert committed["x"] == 1
    assert list(committed["a"]) == [1, 2]
    assert committed["a"] is s.peek("a")  # the stored (frozen) form


def test_transact_that_writes_state_inside_fn_gets_a_clear_error(fresh_state: ServerState) -> None:
    s = fresh_state
    s["a"] = 0

    def fn(m: PMap[str, Any]) -> PMap[str, Any]:
        s["a"] = s.peek("a") + 1  # impure: changes what it read, every time
        return m.set("a", m["a"] + 100)

    with pytest.raises(ServerStateError, match="fn must not write to server_state"):
        s.transact(fn)


def test_a_transaction_alone_does_not_deadlock_with_lock_holders(fresh_state: ServerState) -> None:
    # Writers in update() hold a key lock while their commit waits for a
    # transaction running alone: that transaction never waits for them.
    s = fresh_state
    s["a"], s["b"] = 500, 500

    def transfers() -> None:
        for _ in range(300):
            s.transact(lambda m: m.set("a", m["a"] - 1).set("b", m["b"] + 1))

    def increments() -> None:
        for _ in range(300):
            s.update("a", lambda n: n + 1)
            s.update("b", lambda n: n - 1)

    run_threads([transfers, transfers, increments, increments], timeout=120)
    assert s["a"] + s["b"] == 1000


# -- no operation holds the root lock longer than a commit --------------------------------


def test_the_first_snapshot_after_a_burst_does_not_block_writers(fresh_state: ServerState) -> None:
    s = fresh_state
    store = s._store
    for i in range(200_000):
        s[f"k{i}"] = i
    folding = threading.Event()
    written_while_folding = threading.Event()

    def snapshotter() -> None:
        folding.set()
        s.snapshot()

    def writer() -> None:
        folding.wait(10)
        wait_for(lambda: store.mirror._folding is not None)
        s["w"] = 1  # commits while the fold is still under way
        if store.mirror._folding is not None:
            written_while_folding.set()

    run_threads([snapshotter, writer])
    assert written_while_folding.is_set()
    assert s.snapshot()["w"] == 1
    assert len(s.snapshot()) == 200_001


# -- a deadlock between two key locks is reported, not silent -----------------------------


def test_crossed_update_under_held_key_locks_raises_naming_the_keys(
    fresh_state: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks_module, "LOCK_PATIENCE", 0.3)
    s = fresh_state
    s["a"], s["b"] = 0, 0
    lock = ServerStateLock(s._locks, _check_key)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one(mine: str, other: str) -> Callable[[], None]:
        def run() -> None:
            with lock[mine]:
                barrier.wait()
                try:
                    s.update(other, lambda n: n + 1)
                except ServerStateDeadlockError as exc:
                    errors.append(exc)

        return run

    run_threads([one("a", "b"), one("b", "a")], timeout=30)
    assert errors
    message = str(errors[0])
    assert "'a'" in message and "'b'" in message and "deadlock" in message
    assert isinstance(errors[0], RuntimeError)


def test_crossed_transact_under_a_held_key_lock_raises(
    fresh_state: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks_module, "LOCK_PATIENCE", 0.3)
    s = fresh_state
    s["a"], s["b"] = 0, 0
    lock = ServerStateLock(s._locks, _check_key)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def holder_of_a() -> None:
        with lock["a"]:
            barrier.wait()
            try:
                s.update("b", lambda n: n + 1)
            except ServerStateDeadlockError as exc:
                errors.append(exc)

    def holder_of_b() -> None:
        with lock["b"]:
            barrier.wait()
            try:
                s.transact(lambda m: m.set("a", m["a"] + 1))
            except ServerStateDeadlockError as exc:
                errors.append(exc)

    run_threads([holder_of_a, holder_of_b], timeout=30)
    assert errors
    assert s["a"] + s["b"] <= 1  # at most the call that got through


class _AlwaysRetaken:
    """A key's lock among several waiters, as a waiter sees it when the lock
    goes round them: free only for the waiter the holder hands it to, and
    taken again by the next waiter as soon as that one lets go of it."""

    def __init__(self) -> None:
        self.handed = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            return False  # whenever we merely try, another waiter holds it
        self.handed += 1
        assert self.handed < 50, "holding() waited for the lock 50 times and let go of it each time"
        return True

    def release(self) -> None:
        pass


def test_holding_keeps_the_lock_it_waited_for_until_it_has_them_all() -> None:
    # Taking the busy lock only to release it and start over handed it to
    # the next waiter each time: with four threads transferring between two
    # keys, the locks went round the waiters and commits nearly stopped.
    locks = locks_module.KeyLocks()
    retaken = _AlwaysRetaken()
    locks._locks["b"] = retaken  # type: ignore[assignment]
    with locks.holding(["a", "b"]) as held:
        assert held
        assert locks.local("a")._is_owned()  # type: ignore[attr-defined]
    assert retaken.handed == 1
    assert not locks.local("a")._is_owned()  # type: ignore[attr-defined]


def test_a_long_wait_without_other_locks_waits_and_warns(
    fresh_state: ServerState, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(locks_module, "LOCK_PATIENCE", 0.2)
    s = fresh_state
    s["a"] = 0
    lock = ServerStateLock(s._locks, _check_key)
    released = threading.Event()
    holding = threading.Event()

    def holder() -> None:
        with lock["a"]:
            holding.set()
            wait_for(lambda: "waited" in caplog.text)
        released.set()

    def updater() -> None:
        holding.wait(10)
        s.update("a", lambda n: n + 1)

    run_threads([holder, updater], timeout=30)
    assert released.is_set()
    assert s["a"] == 1
    assert "lock of 'a'" in caplog.text


# -- per-user keys leave nothing behind ----------------------------------------------------


def test_churn_of_distinct_keys_keeps_the_store_and_locks_small(fresh_state: ServerState) -> None:
    s = fresh_state
    lock = ServerStateLock(s._locks, _check_key)
    s["live"] = 1
    for i in range(GONE_KEPT * 5):
        key = f"user:{i}"
        with lock[key]:
            s[key] = {"name": f"u{i}", "n": i}
        del s[key]
    store = s._store
    assert s.keys() == ["live"]
    assert len(store.mirror.latest) == 1
    assert len(store.mirror._pending) <= 1
    assert len(store.mirror._gone) <= GONE_KEPT
    assert len(s._locks._locks) <= 2  # "live" at most, and the last one only if held
    store.mirror.check_invariants()


def test_a_key_deleted_long_ago_and_set_again_has_a_newer_version(fresh_state: ServerState) -> None:
    s = fresh_state
    s["old"] = 1
    del s["old"]
    gone_version = s.version("old")
    assert gone_version > 0
    for i in range(GONE_KEPT + 10):  # push "old" out of the kept tombstones
        s[f"u{i}"] = i
        del s[f"u{i}"]
    seen_absent = s.version("old")
    assert seen_absent >= gone_version  # versions never go back
    s["old"] = 2
    assert s.version("old") > seen_absent


def test_a_held_lock_is_not_dropped_when_its_key_is_deleted(fresh_state: ServerState) -> None:
    s = fresh_state
    lock = ServerStateLock(s._locks, _check_key)
    s["k"] = 1
    held = lock["k"]
    with held:
        del s["k"]
        assert lock["k"] is held


def test_a_lock_acquired_without_a_name_for_it_survives_a_delete(fresh_state: ServerState) -> None:
    s = fresh_state
    lock = ServerStateLock(s._locks, _check_key)
    s["k"] = 1
    lock["k"].acquire()  # nobody keeps a reference: only the acquire holds it
    acquired_elsewhere = threading.Event()

    def other() -> None:
        if lock["k"].acquire(timeout=0.05):
            acquired_elsewhere.set()
            lock["k"].release()

    t = threading.Thread(target=other)
    del s["k"]
    t.start()
    t.join(5)
    assert not acquired_elsewhere.is_set()  # still the same, held lock
    lock["k"].release()
