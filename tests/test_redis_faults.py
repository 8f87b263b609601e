"""The Redis backend under faults, on a real redis-server: connections cut
every 50 ms under three writing processes, a stalled lock holder, a restart
that loses the data, a server that is down, a stream trimmed past a replica, a
pickle planted in Redis, and a Redis that is down from the start.

Replicas in other processes are ``tests/redis_worker.py`` children (one JSON
command per line on stdin, one JSON answer per line on stdout). Every wait is
a poll of the real condition with a deadline, never a sleep.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_support import ConnectionKiller, RedisServer, free_port, wait_for

from server_state import (
    ServerState,
    ServerStateConnectionError,
    ServerStateError,
    ServerStateLeaseError,
    ServerStateLock,
    ServerStatePayloadError,
    _check_key,
)
from server_state._store import store_from_url

WORKER = Path(__file__).with_name("redis_worker.py")
ROOT = Path(__file__).resolve().parent.parent
NS = "faults"


def _rs() -> Any:
    """The backend module, imported when a test runs (it needs redis-py and the codec)."""
    import server_state.backends.redis._committer as rs

    return rs


def _store(url: str, **options: Any) -> Any:
    options.setdefault("namespace", NS)
    options.setdefault("block_ms", 100)
    return store_from_url(url, **options)


def _keys_of(store: Any) -> dict[str, str]:
    return {
        "data": store.committer.names.data,
        "ver": store.committer.names.ver,
        "meta": store.committer.names.meta,
        "log": store.committer.names.log,
    }


def redis_seq(client: redis.Redis, store: Any) -> int:
    return int(client.hget(store.committer.names.meta, "seq") or 0)


def settle(client: redis.Redis, *states: ServerState, timeout: float = 10.0) -> int:
    """Until every mirror has every commit Redis has; returns that sequence."""
    for state in states:
        state._store.committer.open()
    seq = redis_seq(client, states[0]._store)
    wait_for(
        lambda: all(s._store.position() >= seq for s in states), timeout, f"the mirrors to reach seq {seq}"
    )
    return seq


@contextlib.contextmanager
def replicas(*stores: Any) -> Iterator[list[ServerState]]:
    states = [ServerState(store) for store in stores]
    try:
        yield states
    finally:
        for state in states:
            state._store.close()


class VersionSampler:
    """A thread reading ``state.version(k)`` of some keys over and over:
    every version it sees must be >= the one before."""

    def __init__(self, states: list[ServerState], keys: list[str]) -> None:
        self.states, self.keys = states, keys
        self.backwards: list[tuple[int, str, int, int]] = []
        self.samples = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="version-sampler", daemon=True)

    def _run(self) -> None:
        last: dict[tuple[int, str], int] = {}
        try:
            while not self._stop.is_set():
                for i, state in enumerate(self.states):
                    for key in self.keys:
                        version = state.version(key)
                        before = last.get((i, key), 0)
                        if version < before:
                            self.backwards.append((i, key, before, version))
                        last[i, key] = version
                self.samples += 1
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def __enter__(self) -> VersionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def check(self) -> None:
        assert self.error is None, f"the version sampler failed: {self.error!r}"
        assert self.samples > 0
        assert not self.backwards, (
            f"versions went backwards (replica, key, before, after): {self.backwards[:10]}"
        )


# -- worker processes ------------------------------------------------------------------


class Child:
    """One ``redis_worker.py`` process, driven by JSON lines."""

    def __init__(self, log_dir: Path, name: str) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_STATE_")}
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=str(ROOT),
                env=env,
                text=True,
                bufsize=1,
            )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def send(self, cmd: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = 30.0) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"{self.name}: no answer within {timeout} s\n--- stderr ---\n{self.stderr_tail()}")
        if line is None:
            pytest.fail(f"{self.name}: exited ({self.proc.poll()})\n--- stderr ---\n{self.stderr_tail()}")
        reply: dict[str, Any] = json.loads(line)
        if "crash" in reply:
            pytest.fail(f"{self.name} crashed:\n{reply['crash']}\n--- stderr ---\n{self.stderr_tail()}")
        return reply

    def request(self, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        self.send(cmd, **args)
        return self.receive(timeout)

    def stop_process(self) -> None:
        """SIGSTOP: every thread of the replica frozen; returns once the kernel says so."""
        os.kill(self.pid, signal.SIGSTOP)
        wait_for(lambda: _proc_state(self.pid) in ("T", "t"), 10, f"{self.name} to be stopped")

    def continue_process(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        wait_for(lambda: _proc_state(self.pid) not in ("T", "t"), 10, f"{self.name} to run again")

    def close(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            with contextlib.suppress(OSError, ValueError):
                self.send("exit")
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()  # our own child, by its Popen
                proc.wait(timeout=10)
        else:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.close()
        self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Callable[[str], Child]]:
    made: list[Child] = []

    def make(name: str) -> Child:
        child = Child(tmp_path, name)
        made.append(child)
        return child

    yield make
    for child in made:
        child.close()


# -- 1. three processes, connections cut every 50 ms -------------------------------------

PROCESSES = 3
THREADS = 3
OPS = 300  # per thread: 200 increments, 100 transfers


@pytest.mark.timeout(120)
def test_increments_and_transfers_from_three_processes_are_exact_while_connections_die(
    fresh_redis: RedisServer, children: Callable[[str], Child]
) -> None:
    url = fresh_redis.url
    raw = fresh_redis.client()
    with replicas(_store(url)) as (observer,):
        observer.update("a", lambda v: v, default=1000)
        observer.update("b", lambda v: v, default=0)
        workers = [children(f"worker{i}") for i in range(PROCESSES)]
        for worker in workers:
            worker.send("open", url=url, namespace=NS, block_ms=200)
        for worker in workers:
            assert worker.receive()["ok"]

        with (
            ConnectionKiller(fresh_redis, interval=0.05) as killer,
            VersionSampler([observer], ["a", "b", "c"]) as sampler,
        ):
            # The barrier: every worker is waiting on stdin; the churn lines go out together.
            for i, worker in enumerate(workers):
                worker.send("churn", threads=THREADS, ops=OPS, seed=i)
            reports = [worker.receive(timeout=100) for worker in workers]
            # Still cutting while the last commits land: at least some cuts hit the work.
            killer.wait_for_kills(1)
        sampler.check()
        assert killer.kills > 0 and killer.rounds > 5, (killer.kills, killer.rounds)

        incs_per_worker = THREADS * (OPS - OPS // 3)
        transfers_per_worker = THREADS * (OPS // 3)
        for worker, report in zip(workers, reports, strict=True):
            summary = {
                k: report[k] for k in ("incs", "transfers", "snapshots", "violations", "errors", "seconds")
            }
            assert report["errors"] == 0, (
                worker.name,
                summary,
                report["error_samples"],
                worker.stderr_tail(),
            )
            assert report["violations"] == 0, (worker.name, summary, report["violation_samples"])
            assert report["incs"] == incs_per_worker, (worker.name, summary)
            assert report["transfers"] == transfers_per_worker, (worker.name, summary)
            assert report["snapshots"] >= THREADS * OPS

        # The cuts hit commits in flight: some were sent again under their transaction id.
        net_errors = sum(r["commit_net_errors"] for r in reports)
        retries = sum(r["commit_retries"] for r in reports)
        print(
            f"kills={killer.kills} rounds={killer.rounds} commits={sum(r['commit_calls'] for r in reports)} "
            f"net_errors={net_errors} retries={retries} seconds={[r['seconds'] for r in reports]} "
            f"slowest op={[r['slowest_op'] for r in reports]}"
        )
        assert retries > 0, "no commit was cut in flight: the killer did not test the replay path"

        # Each increment returned the value it made: together exactly 1..total, once each.
        total = PROCESSES * incs_per_worker
        returned = sorted(v for report in reports for v in report["returned"])
        duplicates = sorted({v for v in returned if returned.count(v) > 1})
        assert not duplicates, f"increments returned the same value twice: {duplicates[:20]}"
        assert returned == list(range(1, total + 1)), (
            f"{len(returned)} increments returned values missing "
            f"{sorted(set(range(1, total + 1)) - set(returned))[:20]}"
        )

        # Redis' own state, read by a replica made now (a full load of the data hash).
        seq = redis_seq(raw, observer._store)
        with replicas(_store(url)) as (fresh,):
            truth = {k: fresh[k] for k in ("a", "b", "c")}
            truth_rver = {k: fresh._store.committer.rver[k] for k in ("a", "b", "c")}
        assert truth["c"] == total, truth
        assert truth["a"] + truth["b"] == 1000, truth
        redis_ver = {k: int(raw.hget(observer._store.committer.names.ver, k)) for k in ("a", "b", "c")}
        assert truth_rver == redis_ver

        # Every mirror converges to it: the three workers' and this process's.
        for worker in workers:
            got = worker.request("converge", seq=seq, timeout=15, keys=["a", "b", "c"])
            assert got["reached"], (worker.name, got, seq)
            assert got["values"] == truth, (worker.name, got)
            assert got["rver"] == redis_ver, (worker.name, got)
        settle(raw, observer)
        assert {k: observer[k] for k in ("a", "b", "c")} == truth
        assert {k: observer._store.committer.rver[k] for k in ("a", "b", "c")} == redis_ver
        # Each transfer is one commit of a and b together: a and b share one Redis version.
        assert redis_ver["a"] == redis_ver["b"]


# -- 2. lease fencing: a stalled lock holder -----------------------------------------------


@pytest.mark.timeout(60)
def test_a_write_under_a_lease_that_expired_while_the_process_was_stopped_is_refused(
    fresh_redis: RedisServer, children: Callable[[str], Child]
) -> None:
    url = fresh_redis.url
    raw = fresh_redis.client()
    with replicas(_store(url, lease_ttl=0.5)) as (b,):
        lock_b = ServerStateLock(b._locks, _check_key)
        b["n"] = 0
        lease_key = b._store.committer.names.lease + "n"
        stalled = children("stalled")
        assert stalled.request("open", url=url, namespace=NS, lease_ttl=0.5, block_ms=200)["ok"]

        # 1) It holds the lock, stalls past its lease; B takes the lock meanwhile.
        held = stalled.request("lock", key="n")
        assert held == {"ok": True, "value": 0}
        token = raw.get(lease_key)
        assert token is not None
        stalled.stop_process()
        try:
            with lock_b["n"]:  # waits until the stalled lease expires: nobody renews it
                assert raw.get(lease_key) != token
                b["n"] = b["n"] + 1
                seq = redis_seq(raw, b._store)
                stalled.continue_process()
                # Its write under the lost lease (equal to B's value: the confirm path).
                refused = stalled.request("write", key="n", value=1)
                assert refused["error"] == ServerStateLeaseError.__name__, refused
                assert refused["key"] == "n" and refused["server_state_error"], refused
                assert "RuntimeError" in refused["mro"]
                # A different value (the commit path): refused too.
                refused = stalled.request("write", key="n", value=100)
                assert refused["error"] == ServerStateLeaseError.__name__, refused
                assert redis_seq(raw, b._store) == seq, "a refused write changed Redis"
                # Its release must not drop B's lease.
                assert stalled.request("release", key="n") == {"ok": True}
                assert raw.get(lease_key) not in (None, token)
                b["n"] = b["n"] + 1  # B's lease is intact: its own writes pass
            assert b["n"] == 2
        finally:
            if _proc_state(stalled.pid) in ("T", "t"):
                stalled.continue_process()

        # The same process takes the lock again normally: it sees B's writes.
        assert stalled.request("locked_incr", key="n") == {"ok": True, "value": 3}

        # 2) Stalled past its lease with nobody else taking it: still refused.
        assert stalled.request("lock", key="n") == {"ok": True, "value": 3}
        stalled.stop_process()
        try:
            wait_for(lambda: not raw.exists(lease_key), 5, "the stalled lease to expire")
            seq = redis_seq(raw, b._store)
        finally:
            stalled.continue_process()
        refused = stalled.request("write", key="n", value=4)
        assert refused["error"] == ServerStateLeaseError.__name__, refused
        assert redis_seq(raw, b._store) == seq
        assert stalled.request("release", key="n") == {"ok": True}

        settle(raw, b)
        assert b["n"] == 3
        got = stalled.request("converge", seq=redis_seq(raw, b._store), keys=["n"])
        assert got["reached"] and got["values"] == {"n": 3}, got
        with replicas(_store(url)) as (fresh,):
            assert fresh["n"] == 3


# -- 3. restart with the data wiped ------------------------------------------------------------


@pytest.mark.timeout(60)
def test_after_a_restart_that_lost_the_data_mirrors_resync_and_versions_only_grow(
    fresh_redis: RedisServer,
) -> None:
    url = fresh_redis.url
    raw = fresh_redis.client()
    keys = ["x", "y", "z", "w"]
    with replicas(_store(url), _store(url)) as (a, b):
        a["x"], a["y"], a["z"] = 1, [1, 2], {"k": "v"}
        settle(raw, a, b)
        assert (b["x"], b["y"], b["z"]) == (1, [1, 2], {"k": "v"})
        before = {k: (a.version(k), b.version(k)) for k in keys}
        resyncs = (a._store.committer.resyncs, b._store.committer.resyncs)
        with VersionSampler([a, b], keys) as sampler:
            fresh_redis.restart(wipe=True)
            a["w"] = "after"  # right away: a commit under the old epoch must not be lost
            for state in (a, b):
                wait_for(lambda s=state: s.keys() == ["w"], 10, "x, y, z to vanish and w to appear")
            assert b["w"] == "after"
            a["x"] = "again"
            wait_for(lambda: b.get("x") == "again", 10, "b to see x written after the restart")
            b.update("x", lambda v: v + "!")
            wait_for(lambda: a.get("x") == "again!", 10, "a to see b's update")
        sampler.check()
        assert a._store.committer.resyncs > resyncs[0] and b._store.committer.resyncs > resyncs[1]
        for state_index, state in enumerate((a, b)):
            for key in ("x", "y", "z"):
                assert state.version(key) > before[key][state_index], (key, state_index)
        settle(raw, a, b)
        assert sorted(a.keys()) == sorted(b.keys()) == ["w", "x"]
        with replicas(_store(url)) as (fresh,):
            assert {k: fresh[k] for k in fresh} == {"w": "after", "x": "again!"}


# -- 4. the server down --------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_writes_fail_fast_while_redis_is_down_reads_keep_serving_and_writes_resume_after(
    fresh_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rs = _rs()
    monkeypatch.setattr(rs, "WRITE_PATIENCE", 1.0)
    url = fresh_redis.url
    raw = fresh_redis.client()
    with replicas(_store(url), _store(url)) as (a, b):
        a["x"], a["y"] = 1, {"k": [1, 2]}
        settle(raw, a, b)
        before = {k: (a[k], a.version(k)) for k in ("x", "y")}
        snap = a.snapshot()
        fresh_redis.stop()

        writes: list[tuple[set[str], Callable[[], Any]]] = [
            ({"x"}, lambda: a.__setitem__("x", 2)),
            ({"x"}, lambda: a.update("x", lambda v: v + 1)),
            ({"y"}, lambda: a.__delitem__("y")),
            ({"new"}, lambda: a.__setitem__("new", 1)),
            ({"x", "y"}, lambda: a.transact(lambda s: s.set("x", 5).set("y", 6))),
        ]
        for key, write in writes:
            started = time.monotonic()
            with pytest.raises(ServerStateConnectionError) as caught:
                write()
            elapsed = time.monotonic() - started
            assert elapsed < rs.WRITE_PATIENCE + 2, (key, elapsed)
            err = caught.value
            assert isinstance(err, ConnectionError) and isinstance(err, ServerStateError)
            assert err.key in key, (err.key, key)  # a transaction names one of its keys
            assert f"127.0.0.1:{fresh_redis.port}" in str(err), str(err)
            # The mirror is unchanged; reads keep serving it.
            assert {k: (a[k], a.version(k)) for k in ("x", "y")} == before
            assert "new" not in a
            assert a.snapshot().seq == snap.seq
            assert dict(a.snapshot()) == dict(snap)
        assert (b["x"], b["y"]) == (1, {"k": [1, 2]})

        fresh_redis.restart()  # same port, empty: nothing was persisted
        a["x"] = 7  # the same store: no new replica
        wait_for(lambda: b.get("x") == 7, 10, "b to see a's write after the restart")
        b["z"] = "from b"
        wait_for(lambda: a.get("z") == "from b", 10, "a to see b's write after the restart")
        assert a.version("x") > before["x"][1]
        settle(fresh_redis.client(), a, b)
        assert sorted(a.keys()) == sorted(b.keys()) == ["x", "z"]


# -- 5. the stream trimmed past a replica ------------------------------------------------------


class GatedFollower:
    """A follower client whose stream reads can be held back: the replica
    stops reading the stream (between two reads) until ``resume()``. The
    follower sends its XREADs on a connection it takes from the pool, so
    the gate sits on that connection's ``send_command``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._open = threading.Event()
        self._open.set()
        self.parked = threading.Event()
        self.connection_pool = _GatedPool(client.connection_pool, self)

    def wait_open(self) -> None:
        if not self._open.is_set():
            self.parked.set()
            self._open.wait()
            self.parked.clear()

    def hold(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _GatedPool:
    def __init__(self, pool: Any, gate: GatedFollower) -> None:
        self._pool, self._gate = pool, gate

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        return _GatedConnection(self._pool.get_connection(*args, **kwargs), self._gate)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class _GatedConnection:
    def __init__(self, conn: Any, gate: GatedFollower) -> None:
        self._conn, self._gate = conn, gate

    def send_command(self, *args: Any, **kwargs: Any) -> Any:
        if args and args[0] == "XREAD":
            self._gate.wait_open()
        return self._conn.send_command(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.mark.timeout(60)
def test_a_replica_the_stream_was_trimmed_past_resyncs_and_converges(fresh_redis: RedisServer) -> None:
    url = fresh_redis.url
    raw = fresh_redis.client()
    rs = _rs()
    commit_client, follow_client = rs.RedisCommitter.connect(url)
    gate = GatedFollower(follow_client)
    store_b = store_from_url(url, namespace=NS, block_ms=100, clients=(commit_client, gate))
    with replicas(_store(url, stream_maxlen=1), store_b) as (a, b):
        log = a._store.committer.names.log
        a["k"] = 0
        settle(raw, a, b)

        def hold_b() -> None:
            gate.hold()
            a["wake"] = uuid.uuid4().hex  # ends b's blocking read, if it is in one
            wait_for(gate.parked.is_set, 5, "b's follower to stop reading")

        with VersionSampler([b], ["k"]) as sampler:
            # 1) Commits trimmed away (MAXLEN ~ 1: whole stream nodes) while b does not read.
            hold_b()
            rseq, resyncs = b._store.position(), b._store.committer.resyncs
            for _ in range(300):
                a.update("k", lambda v: v + 1)
            first = raw.xrange(log, count=1)
            assert int(first[0][1][b"seq"]) > rseq + 1, "the stream was not trimmed past b"
            assert raw.xlen(log) < 300
            assert b._store.position() == rseq and b["k"] < 300  # b really missed them
            gate.resume()
            seq = settle(raw, a, b)
            assert b["k"] == 300
            assert b._store.committer.rver["k"] == int(raw.hget(a._store.committer.names.ver, "k"))
            assert b._store.committer.resyncs > resyncs, (
                "b caught up without a resync: it cannot have read the trimmed entries"
            )

            # 2) The whole stream trimmed and nothing written after: b notices while idle.
            hold_b()
            rseq, resyncs = b._store.position(), b._store.committer.resyncs
            for _ in range(5):
                a.update("k", lambda v: v + 1)
            raw.xtrim(log, maxlen=0, approximate=False)
            assert raw.xlen(log) == 0
            gate.resume()
            seq = settle(raw, a, b)
            assert b["k"] == 305
            assert b._store.position() == seq
            assert b._store.committer.resyncs > resyncs
        sampler.check()
        # And b keeps following afterwards.
        a["k"] = "done"
        wait_for(lambda: b.get("k") == "done", 10, "b to follow after its resyncs")


# -- 6. a pickle planted in Redis -----------------------------------------------------------------

_PLANT = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], seq)
local body = 's' .. #ARGV[1] .. ':' .. ARGV[1] .. #ARGV[2] .. ':' .. ARGV[2]
redis.call('XADD', KEYS[4], '*', 'seq', seq, 'e', epoch, 'tx', ARGV[3], 'o', '', 'b', body)
return seq
"""


class Booby:
    """Unpickling it opens (creates) ``path`` for writing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.path), "w")


def _plant(client: redis.Redis, store: Any, key: str, payload: bytes) -> int:
    """Write ``key`` into the data hash and the stream as a commit would, bypassing the library."""
    k = _keys_of(store)
    return int(
        client.eval(_PLANT, 4, k["meta"], k["data"], k["ver"], k["log"], key, payload, uuid.uuid4().hex)
    )


def _plant_booby_traps(raw: redis.Redis, store: Any, marker: Path) -> tuple[dict[str, bytes], int]:
    from server_state.backends._codec import make_codec

    payloads = {
        # A bare pickle behind the marker.
        "evil": b"P" + pickle.dumps(Booby(marker)),
        # A well-formed signed pickle, signed with a key no replica has.
        "evil signed": make_codec("pickle", b"the attacker's key").encode("evil signed", Booby(marker)),
    }
    assert all(p[:1] == b"P" for p in payloads.values())
    seq = 0
    for key, payload in payloads.items():
        seq = _plant(raw, store, key, payload)
    return payloads, seq


@pytest.mark.timeout(60)
def test_a_pickle_planted_in_redis_is_never_unpickled_and_the_replica_keeps_working(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="server_state")
    raw = redis.Redis.from_url(redis_url)
    marker = tmp_path / "unpickled"
    try:
        with replicas(_store(redis_url), _store(redis_url)) as (a, b):
            a["ok"] = 1
            settle(raw, a, b)
            payloads, seq = _plant_booby_traps(raw, a._store, marker)
            # The followers read the planted entries (and refuse them).
            wait_for(
                lambda: a._store.position() >= seq and b._store.position() >= seq, 10, "the planted commits"
            )
            # Replicas made now load them from the data hash (and refuse them): one
            # with the default codec, one that takes pickles signed with its own key.
            with replicas(_store(redis_url), _store(redis_url, serializer="pickle", signing_key="ours")) as (
                c,
                d,
            ):
                assert c["ok"] == 1 and d["ok"] == 1
                for state in (a, b, c, d):
                    for key in payloads:
                        assert key not in state
                        assert state.get(key, "absent") == "absent"
                    assert sorted(state.keys()) == ["ok"]
                assert not marker.exists(), "a planted pickle was unpickled"

                refused = [
                    r for r in caplog.records if r.name == "server_state" and r.levelno >= logging.ERROR
                ]
                for key in payloads:
                    named = [r for r in refused if repr(key) in r.getMessage()]
                    # a's follower, b's follower, c's and d's loads: each says which key.
                    assert len(named) >= 4, (key, [r.getMessage() for r in refused])
                    for record in named:
                        assert record.exc_info is not None
                        assert issubclass(record.exc_info[0], ServerStatePayloadError), record.exc_info

                # Everyone keeps working (on the other keys).
                a["ok"] = 2
                a["more"] = [1, 2]
                wait_for(
                    lambda: all(s.get("ok") == 2 and s.get("more") == [1, 2] for s in (a, b, c, d)),
                    10,
                    "every replica to see the writes after the planted ones",
                )
                c.update("ok", lambda v: v + 1)
                wait_for(lambda: a.get("ok") == 3 and b.get("ok") == 3, 10, "c's update")
                b.transact(lambda s: s.set("ok", s["ok"] + 1).set("more", [*s["more"], 3]))
                wait_for(lambda: a.get("ok") == 4 and c.get("more") == [1, 2, 3], 10, "b's transaction")
                assert not marker.exists()
    finally:
        raw.close()


@pytest.mark.timeout(60)
def test_a_key_whose_planted_payload_was_refused_can_be_written_again(redis_url: str, tmp_path: Path) -> None:
    """The app writes the key that holds the refused payload: the write lands
    once and every replica sees it."""
    raw = redis.Redis.from_url(redis_url)
    marker = tmp_path / "unpickled"
    with contextlib.ExitStack() as stack:
        stack.callback(raw.close)
        with replicas(_store(redis_url), _store(redis_url)) as (a, b):
            settle(raw, a, b)
            _, seq = _plant_booby_traps(raw, a._store, marker)
            wait_for(
                lambda: a._store.position() >= seq and b._store.position() >= seq, 10, "the planted commits"
            )
            # b refused them from the stream; c, made now, refuses them from the data hash.
            c = ServerState(_store(redis_url))
            stack.callback(c._store.close)
            assert "evil" not in c and "evil signed" not in c
            before = redis_seq(raw, a._store)
            writes: list[tuple[str, Callable[[], Any], Any]] = [
                ("evil", lambda: b.__setitem__("evil", "fine now"), "fine now"),
                ("evil signed", lambda: c.update("evil signed", lambda v: v + 1, default=0), 1),
            ]
            for n, (key, write, expected) in enumerate(writes, 1):
                done = threading.Event()
                failure: list[BaseException] = []

                def run(
                    write: Callable[[], Any] = write,
                    done: threading.Event = done,
                    failure: list[BaseException] = failure,
                ) -> None:
                    try:
                        write()
                    except BaseException as exc:
                        failure.append(exc)
                    finally:
                        done.set()

                commands = int(raw.info("stats")["total_commands_processed"])
                threading.Thread(target=run, name=f"write-planted-{n}", daemon=True).start()
                if not done.wait(10):
                    spun = int(raw.info("stats")["total_commands_processed"]) - commands
                    # Unstick the writer for the next tests: a readable value under the key,
                    # planted as a commit would write it, gives the mirrors its Redis version.
                    _plant(raw, a._store, key, a._store.committer.codec.encode(key, "unstuck"))
                    done.wait(10)
                    pytest.fail(
                        f"writing {key!r}, whose Redis payload this replica refused, did not return "
                        f"in 10 s: it spun through {spun} Redis commands meanwhile (a commit that "
                        "expects the key absent, a version conflict, a catch-up with nothing to wait "
                        "for, again)",
                        pytrace=False,
                    )
                assert not failure, failure
                assert redis_seq(raw, a._store) == before + n  # one commit, once
                wait_for(
                    lambda k=key, v=expected: a.get(k) == v and b.get(k) == v and c.get(k) == v,
                    10,
                    f"every replica to see {key!r} written",
                )
            assert not marker.exists()


# -- 7. Redis down at first use -----------------------------------------------------------------


@pytest.mark.timeout(60)
def test_redis_down_at_first_use_says_so_naming_the_url_without_its_password() -> None:
    port = free_port()
    url = f"redis://alice:s3cr3t-pw@127.0.0.1:{port}/0"
    shown = f"redis://alice:***@127.0.0.1:{port}/0"
    firsts: list[Callable[[ServerState], Any]] = [
        lambda s: s.get("x"),
        lambda s: s["x"],
        lambda s: "x" in s,
        lambda s: s.keys(),
        lambda s: s.snapshot(),
        lambda s: s.__setitem__("x", 1),
        lambda s: s.update("x", lambda v: v + 1, default=0),
    ]
    for first in firsts:
        with replicas(_store(url)) as (state,):
            started = time.monotonic()
            with pytest.raises(ServerStateConnectionError) as caught:
                first(state)
            assert time.monotonic() - started < 10
            message = str(caught.value)
            assert shown in message, message
            assert "s3cr3t-pw" not in message and "s3cr3t-pw" not in repr(caught.value)
            assert isinstance(caught.value, ConnectionError)

    # The same store works once Redis is there (a failed first use breaks nothing).
    plain = f"redis://127.0.0.1:{port}/0"
    with replicas(_store(plain)) as (state,):
        with pytest.raises(ServerStateConnectionError) as caught:
            state["x"] = 1
        assert plain in str(caught.value)
        with RedisServer(port=port) as server:
            state["x"] = 1
            assert state["x"] == 1
            with replicas(_store(server.url)) as (other,):
                assert other["x"] == 1
