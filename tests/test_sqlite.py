"""The SQLite backend's own guarantees, beyond the contract every backend
passes (tests/test_backend_contract.py, tests/test_store_model.py):

- a restart brings back every key, its version and the history, whether
  the commits are still in the log or already in the checkpoint's tables;
- an append to a long sequence writes its new items, not the sequence;
- a process that fell behind the trimmed log reads the state again;
- ``server_state_lock`` across processes: a lease, and a holder that lost
  it writes nothing (fencing); ``update`` waits for another holder.

Two stores on one file stand for two processes (two connections, two
mirrors, two followers); the real multi-process tests are in
tests/test_sqlite_servers.py and tests/test_sqlite_crash.py.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import random
import sqlite3
import threading
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
import pytest
from pyrsistent import pmap, pvector

from server_state import MISSING, ServerState, ServerStateLeaseError, ServerStateLock, _check_key
from server_state._store import Store, store_from_url
from server_state._values import unchanged
from server_state.backends.sqlite import _committer

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints every 8 commits, 4 behind: a few dozen commits cross
    several of them."""
    monkeypatch.setattr(_committer, "CHECKPOINT_EVERY", 8)
    monkeypatch.setattr(_committer, "CHECKPOINT_LAG", 4)


@pytest.fixture
def stores(url: str) -> Iterator[list[Store]]:
    made: list[Store] = []
    yield made
    for store in made:
        store.close()


def open_store(stores: list[Store], url: str, **options: Any) -> Store:
    store = store_from_url(url, **options)
    stores.append(store)
    return store


def settle(*stores: Store, timeout: float = 10.0) -> None:
    """Until every store's mirror has the file's last commit."""
    head = stores[0].committer.head()
    deadline = time.monotonic() + timeout
    while not all(s.position() >= head for s in stores):
        assert time.monotonic() < deadline, [s.position() for s in stores]
        time.sleep(0.002)  # polling the condition above


def same(x: Any, y: Any) -> bool:
    if isinstance(x, pd.DataFrame):
        return isinstance(y, pd.DataFrame) and x.equals(y)
    return x == y and unchanged(x, y) if not hasattr(x, "__len__") else x == y


def everything(store: Store) -> dict[str, tuple[Any, int]]:
    return {k: (store.entry(k)[0], store.version(k)) for k in store.keys()}  # noqa: SIM118  (a Store is no mapping)


@pytest.mark.parametrize("checkpoints", ["default", "every 8 commits"])
def test_a_restart_brings_back_keys_versions_and_history(
    stores: list[Store], url: str, checkpoints: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits of every kind: values kept whole (a DataFrame, a datetime in
    a time zone, a Decimal, an enum, numpy scalars), a long sequence kept item
    by item and appended to, deletes, re-creations, a multi-key transaction;
    all of them still in the log (the default: the history's 100 records come
    back), or most of them in the checkpoint's tables (the history comes back
    from the checkpoint on)."""
    if checkpoints != "default":
        monkeypatch.setattr(_committer, "CHECKPOINT_EVERY", 8)
        monkeypatch.setattr(_committer, "CHECKPOINT_LAG", 4)
    store = open_store(stores, url)
    rng = random.Random(7)
    store.set("log", pvector(range(100)))
    store.set(
        "frame", pd.DataFrame({"x": [1, 2], "at": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True)})
    )
    store.set("when", datetime.datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN))
    store.set("price", decimal.Decimal("2.50"))
    store.set("level", Level.HIGH)
    for i in range(60):
        store.update("log", lambda v, i=i: v.append({"n": i, "who": f"user{i % 3}"}))
        store.update("count", lambda v: v + 1, default=0)
        key = f"user:{rng.randrange(5)}"
        if store.entry(key)[0] is MISSING:
            store.set(key, {"score": np.int64(i), "ratio": np.float32(i / 7)})
        else:
            store.delete(key)
        if i % 10 == 0:
            store.transact(lambda m: m.set("a", m.get("a", 0) + 1).set("b", m.get("b", 0) - 1))
    before = everything(store)
    history = store.records()
    assert store.committer.head() == store.position()
    store.close()

    again = open_store(stores, url)
    again.committer.open()  # (a store opens on first use)
    assert again.position() == store.position()
    after = everything(again)
    assert list(after) == list(before)
    for key, (value, version) in before.items():
        assert after[key][1] == version, key
        assert same(after[key][0], value), key
    assert type(after["log"][0]) is type(before["log"][0])
    assert after["level"][0] is Level.HIGH
    assert after["when"][0].tzinfo == BERLIN
    # The history: the same commits, each key's value before and after.
    back = again.records()
    if checkpoints == "default":
        assert len(back) == len(history) == 100
    else:
        assert 4 <= len(back) < 4 + 8
    assert [r.seq for r in back] == [r.seq for r in history[: len(back)]]
    for was, now in zip(history, back, strict=False):
        assert [c.key for c in now.changes] == [c.key for c in was.changes]
        for c_was, c_now in zip(was.changes, now.changes, strict=True):
            assert same(c_now.old, c_was.old) and same(c_now.new, c_was.new), (was.seq, c_was.key)
    # And what it is for: the state a while ago.
    seq = back[-1].seq - 1
    assert dict(again.at(seq).values).keys() == dict(store.at(seq).values).keys()


def test_an_append_or_an_entry_writes_what_changed_not_the_value(
    stores: list[Store], url: str, tmp_path: Path
) -> None:
    """The row of an append to a sequence, or of one entry of a map, is as
    long for 100 items as for 10,000."""
    store = open_store(stores, url)

    def last_row() -> int:
        conn = sqlite3.connect(tmp_path / "state.db")
        (body,) = conn.execute("SELECT body FROM log ORDER BY seq DESC LIMIT 1").fetchone()
        conn.close()
        return len(body)

    appended, edited = {}, {}
    for n in (100, 10_000):
        store.set(f"log{n}", pvector({"text": "hello " * 3, "i": i} for i in range(n)))
        for _ in range(2):  # (the first append may change the vector's kind, sent whole)
            store.update(f"log{n}", lambda v: v.append({"text": "new", "i": -1}))
        appended[n] = last_row()
        store.set(f"votes{n}", pmap({f"user{i}": i % 5 for i in range(n)}))
        store.update(f"votes{n}", lambda v: v.set("user7", 4))
        edited[n] = last_row()
    # The same but for the key's name (two digits) and the length and position
    # (msgpack ints, two bytes longer each).
    assert appended[10_000] == appended[100] + 2 + 4 and appended[100] < 100
    assert edited[10_000] == edited[100] + 2 + 2 and edited[100] < 100


def test_a_process_behind_the_trimmed_log_reads_the_state_again(
    stores: list[Store], url: str, small_checkpoints: None
) -> None:
    ahead = open_store(stores, url, log_kept=5)
    behind = open_store(stores, url)
    behind.set("x", 0)
    settle(ahead, behind)
    held, release = threading.Event(), threading.Event()
    committer = behind.committer
    original = committer.follow_once

    def paused() -> None:
        held.set()
        release.wait(10)
        original()

    committer.follow_once = paused  # type: ignore[method-assign]
    try:
        assert held.wait(10)
        for i in range(40):
            ahead.set(f"k{i % 7}", i)
        ahead.delete("x")
        reloads = committer.reloads
        release.set()
        settle(ahead, behind)
    finally:
        committer.follow_once = original  # type: ignore[method-assign]
    assert committer.reloads == reloads + 1
    assert everything(behind) == everything(ahead)
    assert behind.entry("x") == (MISSING, ahead.version("x"))


def lock_of(state: ServerState) -> ServerStateLock:
    return ServerStateLock(state._locks, _check_key, state.keys, state._has)


def test_a_key_lock_is_held_across_processes_and_fences_a_holder_that_lost_it(
    url: str, tmp_path: Path
) -> None:
    a, b = ServerState(store_from_url(url, lease_ttl=5)), ServerState(store_from_url(url, lease_ttl=5))
    try:
        a["count"] = 0
        with lock_of(a)["count"]:
            assert not lock_of(b)["count"].acquire(blocking=False)  # the other process waits
            a["count"] += 1
        with lock_of(b)["count"]:  # free again
            b["count"] += 1
        assert b.peek("count") == 2
        # A holder whose lease was taken over (it stalled past the lease time)
        # writes nothing.
        with lock_of(a)["count"]:
            conn = sqlite3.connect(tmp_path / "state.db")
            conn.execute("UPDATE leases SET token = token + 1000 WHERE key = 'count'")
            conn.commit()
            conn.close()
            version = a.version("count")
            with pytest.raises(ServerStateLeaseError, match="expired"):
                a["count"] = 99
            assert a.version("count") == version and a.peek("count") == 2
    finally:
        a._store.close()
        b._store.close()


def test_update_waits_while_another_process_holds_the_key_lock(url: str) -> None:
    a, b = ServerState(store_from_url(url)), ServerState(store_from_url(url))
    try:
        a["n"] = 0
        done = threading.Event()
        with lock_of(a)["n"]:
            worker = threading.Thread(target=lambda: (b.update("n", lambda v: v + 10), done.set()))
            worker.start()
            assert not done.wait(0.3)  # the other process's update waits for the lock
            a["n"] = 5
        worker.join(10)
        assert done.is_set()
        assert b.peek("n") == 15  # applied after the holder's write, to its result
    finally:
        a._store.close()
        b._store.close()


def test_random_commits_read_back_the_same_after_each_checkpoint(
    stores: list[Store], url: str, small_checkpoints: None
) -> None:
    """Random sets, deletes, appends, cuts and rewrites of long sequences,
    entries of big maps set and removed, and transactions, with a
    checkpoint every 8 commits: a store opened on the file at any point
    reads exactly the writer's state and versions."""
    writer = open_store(stores, url)
    rng = random.Random(20)
    keys = [f"k{i}" for i in range(6)]
    for step in range(300):
        key = rng.choice(keys)
        current = writer.entry(key)[0]
        roll = rng.random()
        if roll < 0.2:
            writer.set(key, rng.choice([step, f"text {step}", {"n": step}, (step, step)]))
        elif roll < 0.3 and current is not MISSING:
            writer.delete(key)
        elif roll < 0.55:
            writer.update(
                key,
                lambda v, s=step: (v if isinstance(v, type(pvector())) else pvector(range(70))).append(s),
                default=None,
            )
        elif roll < 0.7 and hasattr(current, "delete") and len(current) > 66:
            writer.update(key, lambda v: v.delete(len(v) - 1))  # the last item goes: a patch that cuts
        elif roll < 0.8 and isinstance(current, type(pvector())) and len(current) > 1:
            writer.update(key, lambda v, s=step: v.set(len(v) - 1, -s))  # the last item changes
        elif roll < 0.9:  # a map kept entry by entry: an entry set, or removed
            entry, stay = rng.randrange(90), rng.random() < 0.7

            def edit(v: Any, e: int = entry, stay: bool = stay, s: int = step) -> Any:
                m = v if isinstance(v, type(pmap())) else pmap({i: {"v": i} for i in range(70)})
                return m.set(e, {"v": s}) if stay or e not in m else m.remove(e)

            writer.update(key, edit, default=None)
        else:
            other = rng.choice(keys)
            writer.transact(lambda m, k=key, o=other, s=step: m.set(k, s).set(o, -s))
        if step % 50 == 49:
            reader = open_store(stores, url)
            assert everything(reader) == everything(writer), step
            reader.close()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    kinds = [
        (op[0], op[0] == "A" and op[4] < op[3])
        for (body,) in conn.execute("SELECT body FROM log")
        for op in msgpack.unpackb(body)
    ]
    checkpoint = conn.execute("SELECT value FROM meta WHERE name = 'checkpoint'").fetchone()[0]
    conn.close()
    assert {"s", "d", "L", "A"} <= {kind for kind, _ in kinds} and (
        "A",
        True,
    ) in kinds  # every kind, and cuts
    assert checkpoint > 250


def test_processes_opening_a_new_file_at_once_all_open_it(tmp_path: Path) -> None:
    """One of them creates the schema; the others must see it whole, never
    a file with tables and no mark (taken for another program's), and wait
    for the switch to WAL mode (which SQLite answers "locked" at once)."""
    for attempt in range(20):
        url = f"sqlite:///{tmp_path}/new-{attempt}.db"
        opened = [store_from_url(url) for _ in range(6)]
        barrier = threading.Barrier(len(opened))
        errors: list[BaseException] = []

        def first_use(store: Store, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            barrier.wait()
            try:
                store.committer.open()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=first_use, args=(store, barrier, errors)) for store in opened]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for store in opened:
            store.close()
        assert not errors, errors
