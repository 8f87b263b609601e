"""Redis backend figures: each one beside its floor, measured in the same run.

    python -m benchmarks.redis_bench [--full|--smoke] [--json out.json] [--only read,write,...]

The run starts its own ``redis-server`` (127.0.0.1, a free port, no
persistence), stopped by its PID at the end; every figure uses a namespace of
its own on it. ``benchmarks.run`` prints this table after its first one
(group ``redis``); ``--full`` (the default) takes about two minutes on 2
cores, ``--smoke`` well under 30 s: it proves that every figure runs, its
figures and "met" mean nothing.

- ``read``: ``state["k"]`` and ``state.peek("k")`` on a ``RedisStore`` (reads
  its local mirror) against the same reads on the memory backend, timed loops,
  repeats interleaved.
- ``write``: ``state.update("c", lambda v: v + 1)`` and ``state["k"] = i``
  against the floor of any commit: a bare redis-py ``EVALSHA`` of
  ``return 1`` on a client made the same way (``redis.Redis.from_url``).
- ``cross``: two replicas in two processes; a commit in replica 1 until the
  ``watch`` callback of replica 2 runs (its mirror has it), p50 and p99.
- ``resync``: a new store on a Redis holding N keys of small values, the time
  of its first use; and a resync when 1 key changed (the incremental cost),
  both beside the bare read of the same hashes by redis-py.
- ``click``: the seed counter app (``apps/counter_app.py``) on two
  ``streamlit run`` replicas sharing the Redis (``SERVER_STATE_URL``): a click
  in a session of replica 1 until a session of replica 2 finished a run showing
  the new value; beside the same on one server with the memory backend.

``read``, ``write``, ``cross`` and ``resync`` each run in a child process of
their own (``--measure ITEM``), like benchmarks/hardening.py; ``click`` runs in
this process (it starts the Streamlit servers and stops them by PID).

Exit status: 0 when every figure ran, whether or not targets were met; 1 when
one failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ._client import TESTS  # noqa: F401  (puts tests/ on sys.path: harness, imported where used)

ROOT = Path(__file__).resolve().parent.parent

ITEMS = ("read", "write", "cross", "resync", "patch", "click")
CHILD_ITEMS = ("read", "write", "cross", "resync", "patch")  # the others run here

SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "read_loop": 50_000,
        "read_repeats": 41,
        "write_loop": 500,
        "write_repeats": 21,
        "cross_writes": 2_000,
        "cross_warmup": 50,
        "resync_keys": 10_000,
        "resync_repeats": 7,
        "resync_incremental": 21,
        "click_writes": 40,
        "click_warmup": 3,
        "patch_sizes": (1_000, 10_000, 100_000),
        "patch_appends": 200,
        "patch_warmup": 50,
        "patch_whole": (50, 20, 5),  # whole-value writes timed at each size
        "patch_resync_items": 1_000_000,
        "patch_cross": 300,
    },
    "smoke": {
        "read_loop": 5_000,
        "read_repeats": 3,
        "write_loop": 20,
        "write_repeats": 3,
        "cross_writes": 30,
        "cross_warmup": 5,
        "resync_keys": 1_000,
        "resync_repeats": 2,
        "resync_incremental": 3,
        "click_writes": 2,
        "click_warmup": 1,
        "patch_sizes": (1_000, 2_000, 4_000),
        "patch_appends": 10,
        "patch_warmup": 2,
        "patch_whole": (3, 2, 2),
        "patch_resync_items": 20_000,
        "patch_cross": 10,
    },
}

CHILD_TIMEOUT = {"full": 240.0, "smoke": 60.0}
CROSS_GAP = (0.0005, 0.0025)  # seconds of idle between two cross-replica writes (uniform)
CHUNK = 1_000  # keys per transact when filling the state for the resync figures


def log(msg: str) -> None:
    print(f"[redis {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# a redis-server of our own
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_path() -> str | None:
    from harness.programs import program_path

    return program_path("redis-server", ("/usr/bin/redis-server", "/usr/local/bin/redis-server"))


class LocalRedis:
    """``redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no``
    as a child process (its working directory and log in a temporary
    directory); ready once the server answering on the port reports this
    child's PID; stopped by that PID (SIGTERM, SIGKILL after 10 s)."""

    def __init__(self, startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        import redis

        exe = redis_server_path()
        if exe is None:
            raise RuntimeError(
                "redis-server not found: the redis benchmarks need a real server "
                "(`make system-deps`, or `sudo apt-get install redis-server`)."
            )
        self.dir = Path(tempfile.mkdtemp(prefix="server-state-bench-redis-"))
        logfile = self.dir / "redis.log"
        for _ in range(5):
            self.port = _free_port()
            cmd = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            cmd += ["--dir", str(self.dir), "--daemonize", "no"]
            with open(logfile, "ab") as out:
                self._proc = subprocess.Popen(
                    cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            deadline = time.monotonic() + self.startup_timeout
            while self._proc.poll() is None and time.monotonic() < deadline:
                try:
                    with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, retry=None) as probe:
                        if int(probe.info("server")["process_id"]) == self._proc.pid:
                            return self
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.01)  # waiting for another process to listen, with a deadline
            text = logfile.read_text(errors="replace")
            self.stop()
            if "Address already in use" not in text[-2000:]:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}:\n{text[-2000:]}")
        raise RuntimeError("redis-server: no free port after 5 attempts")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        from harness.programs import stop_process

        stop_process(proc, 10)

    def close(self) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _namespace(item: str) -> str:
    return f"bench-{item}-{uuid.uuid4().hex[:8]}"


def _redis_state(url: str, namespace: str) -> Any:
    from server_state import ServerState
    from server_state.backends.redis import RedisStore

    return ServerState(RedisStore(url, namespace=namespace))


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation between closest ranks."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# The timed loops: one function per operation, so each loop body is the
# operation alone. Each returns nanoseconds per operation.


def _loop_get(state: Any, k: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(k):
        state["k"]
    return (time.perf_counter_ns() - t0) / k


def _loop_peek(state: Any, k: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(k):
        state.peek("k")
    return (time.perf_counter_ns() - t0) / k


def _loop_empty(state: Any, k: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(k):
        pass
    return (time.perf_counter_ns() - t0) / k


def _loop_update(state: Any, k: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(k):
        state.update("c", lambda v: v + 1)
    return (time.perf_counter_ns() - t0) / k


_next_value = iter(range(1, 1 << 62))


def _loop_set(state: Any, k: int) -> float:
    values = [next(_next_value) for _ in range(k)]  # a new value every time, made before the timing
    t0 = time.perf_counter_ns()
    for i in values:
        state["k"] = i
    return (time.perf_counter_ns() - t0) / k


def _loop_floor(script: Any, k: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(k):
        script()
    return (time.perf_counter_ns() - t0) / k


# ---------------------------------------------------------------------------
# the figures; each returns a JSON-able dict (seconds, nanoseconds)
# ---------------------------------------------------------------------------


def measure_read(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """Mirror reads of an int key, RedisStore vs memory backend, interleaved."""
    from server_state import ServerState

    states = {"memory": ServerState(), "redis": _redis_state(url, _namespace("read"))}
    try:
        for state in states.values():
            state["k"] = 1
            assert state["k"] == 1 and state.peek("k") == 1
        k, repeats = z["read_loop"], z["read_repeats"]
        loops = {"get": _loop_get, "peek": _loop_peek, "empty": _loop_empty}
        samples: dict[str, dict[str, list[float]]] = {b: {op: [] for op in loops} for b in states}
        for name in states:  # one untimed round: warm caches
            for fn in loops.values():
                fn(states[name], k // 10 or 1)
        for rep in range(repeats):
            order = list(states) if rep % 2 == 0 else list(states)[::-1]
            for name in order:
                for op, fn in loops.items():
                    samples[name][op].append(fn(states[name], k))
        med = {b: {op: statistics.median(v) for op, v in ops.items()} for b, ops in samples.items()}
        out: dict[str, Any] = {"loop": k, "repeats": repeats}
        for op in ("get", "peek"):
            out[op] = {
                f"{b}_ns": max(med[b][op] - med[b]["empty"], 0.1) for b in states
            }  # the loop's own cost taken off
            out[op].update({f"{b}_raw_ns": med[b][op] for b in states})
        out["empty_ns"] = {b: med[b]["empty"] for b in states}
        return out
    finally:
        states["redis"]._store.close()


def measure_write(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """update() and a plain set on Redis vs a bare EVALSHA of ``return 1``."""
    import redis

    state = _redis_state(url, _namespace("write"))
    client = redis.Redis.from_url(url)
    try:
        state["c"] = 0
        state["k"] = 0
        floor = client.register_script("return 1")
        assert floor() == 1  # loads the script: from now on every call is one EVALSHA
        k, repeats = z["write_loop"], z["write_repeats"]
        runs: dict[str, Callable[[], float]] = {
            "floor": lambda: _loop_floor(floor, k),
            "update": lambda: _loop_update(state, k),
            "set": lambda: _loop_set(state, k),
        }
        for fn in runs.values():  # untimed: connections made, code warm
            fn()
        samples: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for rep in range(repeats):
            order = names[rep % 3 :] + names[: rep % 3]
            for name in order:
                samples[name].append(runs[name]())
        updates = k * (repeats + 1)
        assert state.peek("c") == updates, (state.peek("c"), updates)
        return {
            "loop": k,
            "repeats": repeats,
            **{f"{name}_ns": statistics.median(v) for name, v in samples.items()},
        }
    finally:
        state._store.close()
        client.close()


def replica_main(url: str, namespace: str) -> int:
    """Replica 2 of ``cross`` and ``patch``: print ``<value> <monotonic ns>``
    as soon as the ``watch`` callback sees each new value of ``x`` (of a
    sequence: its length); exit when stdin closes."""
    state = _redis_state(url, namespace)
    out = sys.stdout
    lock = threading.Lock()

    def seen(key: str, old: Any, new: Any) -> None:
        t = time.monotonic_ns()
        with lock:
            out.write(f"{new if isinstance(new, int) else len(new)} {t}\n")
            out.flush()

    state.peek("x")  # starts the replica: mirror loaded, follower running
    state.watch("x", seen)
    out.write("ready\n")
    out.flush()
    sys.stdin.read()  # until the parent closes the pipe (or dies)
    state._store.close()
    return 0


@contextlib.contextmanager
def _replica_two(url: str, namespace: str) -> Iterator[IO[str]]:
    """Replica 2 (``replica_main``) in another process, started and ready:
    yields its stdout, a line per value its watch callback saw; stopped by
    closing its stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.redis_bench", "--replica", url, namespace],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = proc.stdout.readline().strip()
        if first != "ready":
            raise RuntimeError(f"replica 2 did not start: {first!r}")
        yield proc.stdout
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure_cross(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """Commit in replica 1 (this process) until replica 2 (another process)
    has it in its mirror: its watch callback's clock minus ours."""
    namespace = _namespace("cross")
    state = _redis_state(url, namespace)
    state["x"] = -1
    rng = random.Random(3)
    latency: list[float] = []
    commit: list[float] = []
    try:
        with _replica_two(url, namespace) as seen:
            warmup, n = z["cross_warmup"], z["cross_writes"]
            for i in range(warmup + n):
                t0 = time.monotonic_ns()
                state["x"] = i
                t1 = time.monotonic_ns()
                line = seen.readline()
                value, seen_ns = (int(x) for x in line.split())
                if value != i:
                    raise RuntimeError(f"replica 2 saw {value}, expected {i}")
                if i >= warmup:
                    latency.append((seen_ns - t0) / 1e9)
                    commit.append((t1 - t0) / 1e9)
                time.sleep(rng.uniform(*CROSS_GAP))  # both replicas idle again before the next write
    finally:
        state._store.close()
    return {
        "writes": len(latency),
        "p50": pct(latency, 0.5),
        "p99": pct(latency, 0.99),
        "max": max(latency),
        "commit_p50": pct(commit, 0.5),
        "commit_p99": pct(commit, 0.99),
    }


def measure_resync(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """First use of a new store on N keys; a resync after 1 key changed; the
    bare read of the same hashes (one MULTI, as the store does) for scale."""
    import redis

    n = z["resync_keys"]
    namespace = _namespace("resync")
    writer = _redis_state(url, namespace)
    stores: list[Any] = [writer._store]
    client = redis.Redis.from_url(url)
    try:
        for lo in range(0, n, CHUNK):
            chunk = {f"key{i}": f"value {i}" for i in range(lo, min(lo + CHUNK, n))}
            writer.transact(lambda s, chunk=chunk: s.update(chunk))
        assert len(writer) == n

        def bare_read() -> float:
            store = writer._store
            t0 = time.perf_counter()
            pipe = client.pipeline(transaction=True)
            pipe.hgetall(store._k_data)
            pipe.hgetall(store._k_ver)
            pipe.hmget(store._k_meta, ["epoch", "seq"])
            pipe.xrevrange(store._k_log, "+", "-", count=1)
            data, versions, _, _ = pipe.execute()
            elapsed = time.perf_counter() - t0
            assert len(data) == len(versions) == n
            return elapsed

        bare_read()  # untimed: the connection is made
        first_use: list[float] = []
        floors: list[float] = []
        for _ in range(z["resync_repeats"]):
            fresh = _redis_state(url, namespace)
            stores.append(fresh._store)
            gc.collect()
            t0 = time.perf_counter()
            fresh.peek("key0")
            first_use.append(time.perf_counter() - t0)
            assert len(fresh) == n and fresh.peek(f"key{n - 1}") == f"value {n - 1}"
            fresh._store.close()
            floors.append(bare_read())

        # The incremental resync: a replica whose follower is stopped (closed,
        # so the stream does not bring it the change) resyncs after another
        # replica changed 1 key; only that key is decoded.
        lagging = _redis_state(url, namespace)
        stores.append(lagging._store)
        lagging.peek("key0")
        lagging._store.close()
        lagging._store._resync()  # untimed: its connection is made again
        incremental: list[float] = []
        for rep in range(z["resync_incremental"]):
            key = f"key{rep * 7 % n}"
            writer[key] = f"changed {rep}"
            gc.collect()
            t0 = time.perf_counter()
            lagging._store._resync()
            incremental.append(time.perf_counter() - t0)
            assert lagging.peek(key) == f"changed {rep}"
        return {
            "keys": n,
            "first_use_s": statistics.median(first_use),
            "first_use_max_s": max(first_use),
            "incremental_s": statistics.median(incremental),
            "bare_read_s": statistics.median(floors),
            "repeats": len(first_use),
        }
    finally:
        for store in stores:
            store.close()
        client.close()


def _message(i: int) -> dict[str, Any]:
    return {"user": f"user{i % 30}", "text": f"message number {i} of the chat", "at": 1_700_000_000 + i}


def _net_in(client: Any) -> int:
    return int(client.info("stats")["total_net_input_bytes"])


def _timed(fn: Callable[[], Any], k: int) -> list[float]:
    out = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _write_figures(state: Any, client: Any, fn: Callable[[], Any], warmup: int, k: int) -> dict[str, float]:
    """p50 of ``k`` writes after ``warmup`` untimed ones, and the bytes Redis
    received per write (every client of the run's Redis: the commit, plus
    the followers' XREAD calls)."""
    for _ in range(warmup):
        fn()
    gc.collect()
    before = _net_in(client)
    times = _timed(fn, k)
    return {"p50": statistics.median(times), "p99": pct(times, 0.99), "bytes": (_net_in(client) - before) / k}


def measure_patch(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """Big values as patches: append via update at each size (patches, and
    the whole value with patches turned off: what every write cost before),
    one entry set in a big map, the classic ``v + [m]`` on Redis and on
    memory, the resync of a big value, and the commit of an append until
    another process' mirror has it."""
    import redis
    from pyrsistent import pmap, pvector

    from server_state import ServerState

    client = redis.Redis.from_url(url)
    stores: list[Any] = []

    def fresh(whole: bool = False) -> Any:
        state = _redis_state(url, _namespace("patch"))
        stores.append(state._store)
        state._store._patches = not whole
        return state

    out: dict[str, Any] = {"sizes": list(z["patch_sizes"]), "append": [], "map": {}}
    counter = iter(range(10**9))

    def append_to(state: Any) -> Callable[[], Any]:
        return lambda: state.update("log", lambda v: v.append(_message(next(counter))))

    try:
        for n, whole_k in zip(z["patch_sizes"], z["patch_whole"], strict=True):
            row: dict[str, Any] = {}
            for mode in ("patch", "whole"):
                state = fresh(whole=mode == "whole")
                state["log"] = pvector(_message(i) for i in range(n))
                k = z["patch_appends"] if mode == "patch" else whole_k
                row[mode] = _write_figures(
                    state, client, append_to(state), z["patch_warmup"] if mode == "patch" else 1, k
                )
                assert len(state.peek("log")) >= n + k
                state._store.close()
            out["append"].append(row)
            log(
                f"patch: append at {n:,}: {row['patch']['p50'] * 1e3:.2f} ms vs whole {row['whole']['p50'] * 1e3:.2f} ms"
            )
        n = z["patch_sizes"][-1]
        for mode in ("patch", "whole"):
            state = fresh(whole=mode == "whole")
            state["board"] = pmap({f"player{i}": i for i in range(n)})
            k = z["patch_appends"] if mode == "patch" else z["patch_whole"][-1]
            step = iter(range(10**9))

            def set_one(state: Any = state, step: Any = step) -> None:
                j = next(step)
                state.update("board", lambda m: m.set(f"player{j % n}", -1 - j))

            warmup = z["patch_warmup"] if mode == "patch" else 1
            out["map"][mode] = _write_figures(state, client, set_one, warmup, k)
            state._store.close()
        # The classic assignment of v + [m], on Redis and on memory.
        classic: dict[str, Any] = {}
        for mode in ("redis", "memory"):
            state = fresh() if mode == "redis" else ServerState()
            state["msgs"] = [_message(i) for i in range(n)]

            def classic_append(state: Any = state) -> None:
                state["msgs"] = state["msgs"] + [_message(next(counter))]

            classic[mode] = _write_figures(
                state, client, classic_append, z["patch_warmup"], z["patch_appends"]
            )
            if mode == "redis":
                state._store.close()
        out["classic"] = classic
        # Resync: a new replica's first use on one big value.
        m = z["patch_resync_items"]
        writer = fresh()
        t0 = time.perf_counter()
        writer["big"] = pvector(_message(i) for i in range(m))
        out["resync_write_s"] = time.perf_counter() - t0
        resync: list[float] = []
        for _ in range(3):
            reader = _redis_state(url, writer._store.namespace)
            stores.append(reader._store)
            gc.collect()
            t0 = time.perf_counter()
            got = reader.peek("big")
            resync.append(time.perf_counter() - t0)
            assert len(got) == m
            reader._store.close()
        t0 = time.perf_counter()
        raw = client.lrange(writer._store._k_list + "big", 0, -1)
        out["resync_bare_s"] = time.perf_counter() - t0
        assert len(raw) == m
        del raw
        out["resync_items"] = m
        out["resync_s"] = statistics.median(resync)
        out["redis_memory_big"] = int(client.memory_usage(writer._store._k_list + "big") or 0)
        writer._store.close()
        # Cross-replica: an append at n items until another process' mirror has it.
        out["cross"] = _patch_cross(url, n, z["patch_cross"])
        return out
    finally:
        for store in stores:
            store.close()
        client.close()


def _patch_cross(url: str, n: int, writes: int) -> dict[str, Any]:
    from pyrsistent import pvector

    namespace = _namespace("patch-cross")
    state = _redis_state(url, namespace)
    state["x"] = pvector(_message(i) for i in range(n))
    rng = random.Random(5)
    latency: list[float] = []
    try:
        with _replica_two(url, namespace) as seen:
            for i in range(writes + 10):
                t0 = time.monotonic_ns()
                state.update("x", lambda v, i=i: v.append(_message(n + i)))
                length, seen_ns = (int(x) for x in seen.readline().split())
                if length != n + i + 1:
                    raise RuntimeError(f"replica 2 saw {length} items, expected {n + i + 1}")
                if i >= 10:
                    latency.append((seen_ns - t0) / 1e9)
                time.sleep(rng.uniform(*CROSS_GAP))  # both replicas idle again before the next write
    finally:
        state._store.close()
    return {"items": n, "writes": len(latency), "p50": pct(latency, 0.5), "p99": pct(latency, 0.99)}


async def measure_click(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """The click figures with Streamlit's default options (``postScriptGC``
    on: a full ``gc.collect()`` at the end of every run), then with
    ``postScriptGC`` off, which leaves the part the backend itself adds."""
    return {
        "gc_on": await _click(url, z, {}),
        "gc_off": await _click(url, z, {"runner.postScriptGC": "false"}),
    }


async def _click(url: str, z: dict[str, Any], options: dict[str, str]) -> dict[str, Any]:
    """Click "Increment" in a session of replica 1 until a session of
    replica 2 finished a run showing the new count; beside it, the same two
    sessions on one server with the memory backend; writes alternate."""
    # benchmarks.run imports this module: its helpers are imported when used.
    from . import run as bench

    namespace = _namespace("click")
    replica = {"SERVER_STATE_URL": url, "SERVER_STATE_NAMESPACE": namespace, "SERVER_STATE_BENCH_LIB": "ours"}
    env = {
        "replica1": replica,
        "replica2": replica,
        "memory": {"SERVER_STATE_URL": "memory://", "SERVER_STATE_BENCH_LIB": "ours"},
    }
    key = "click"
    with bench.servers(bench.COUNTER_APP, tuple(env), options, env) as srv:
        await bench.init_key(srv["replica1"], key)
        await bench.init_key(srv["memory"], key)

        def session(server: str, name: str) -> Any:
            return bench.BenchSession(
                srv[server], query_string=f"key={key}", timeout=bench.SESSION_TIMEOUT, name=name
            )

        pairs = {
            "redis": [session("replica1", "redis-A"), session("replica2", "redis-B")],
            "memory": [session("memory", "memory-A"), session("memory", "memory-B")],
        }
        for sessions in pairs.values():
            await bench.connect_all(sessions, bench.SESSION_TIMEOUT)
        try:
            for sessions in pairs.values():
                await bench.quiet_all(sessions)
            lat: dict[str, list[float]] = {name: [] for name in pairs}
            for i in range(z["click_warmup"] + z["click_writes"]):
                order = list(pairs) if i % 2 == 0 else list(pairs)[::-1]
                for name in order:
                    a, b = pairs[name]
                    (t,) = await bench.one_write(a, [b])
                    if i >= z["click_warmup"]:
                        lat[name].append(t)
        finally:
            for sessions in pairs.values():
                await bench.close_all(sessions)
    return {
        name: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "samples": v, "writes": len(v)}
        for name, v in lat.items()
    }


MEASURES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "read": measure_read,
    "write": measure_write,
    "cross": measure_cross,
    "resync": measure_resync,
    "patch": measure_patch,
}


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    benchmark: str
    redis: str
    baseline: str
    ratio: str
    target: str
    met: str  # "yes", "no", or "-" (information only)


def _ns(ns: float) -> str:
    return f"{ns:.0f} ns" if ns < 1000 else _t(ns / 1e9)


def _t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if item == "read":
        for rid, what in (("redis_read", "state['k']"), ("redis_read_peek", "state.peek('k')")):
            op = r["get" if rid == "redis_read" else "peek"]
            ratio = op["redis_ns"] / op["memory_ns"]
            rows.append(
                Row(
                    rid,
                    f"read {what} of an int: RedisStore mirror vs memory backend",
                    _ns(op["redis_ns"]),
                    _ns(op["memory_ns"]) + " (memory)",
                    f"{ratio:.2f}x",
                    "≤ 1.2x memory",
                    _yes(ratio <= 1.2),
                )
            )
    elif item == "write":
        floor = r["floor_ns"]
        for rid, what, target in (
            (
                "redis_update",
                "update('c', lambda v: v + 1) on Redis vs bare EVALSHA 'return 1'",
                "≤ 1.5x EVALSHA",
            ),
            ("redis_set", "state['k'] = i on Redis vs bare EVALSHA 'return 1' (info)", "-"),
        ):
            ns = r["update_ns" if rid == "redis_update" else "set_ns"]
            ratio = ns / floor
            rows.append(
                Row(
                    rid,
                    what,
                    _ns(ns),
                    _ns(floor) + " (EVALSHA)",
                    f"{ratio:.2f}x",
                    target,
                    _yes(ratio <= 1.5) if target != "-" else "-",
                )
            )
    elif item == "cross":
        n = r["writes"]
        commit = f" (commit call {_t(r['commit_p50'])})"
        rows.append(
            Row(
                "redis_cross_replica_p50",
                f"commit in replica 1 → replica 2's mirror (watch), 2 processes, p50 of {n:,}",
                _t(r["p50"]) + commit,
                "-",
                "-",
                "≤ 5 ms",
                _yes(r["p50"] <= 0.005),
            )
        )
        rows.append(
            Row(
                "redis_cross_replica_p99",
                f"commit in replica 1 → replica 2's mirror (watch), 2 processes, p99 of {n:,}",
                _t(r["p99"]) + f" (max {_t(r['max'])})",
                "-",
                "-",
                "≤ 20 ms",
                _yes(r["p99"] <= 0.020),
            )
        )
    elif item == "resync":
        n, bare = r["keys"], r["bare_read_s"]
        rows.append(
            Row(
                "redis_resync",
                f"resync: first use of a new store, {n:,} keys of small values",
                _t(r["first_use_s"]),
                _t(bare) + " (bare MULTI read)",
                f"{r['first_use_s'] / bare:.1f}x",
                "≤ 1 s",
                _yes(r["first_use_s"] <= 1.0),
            )
        )
        rows.append(
            Row(
                "redis_resync_incremental",
                f"resync after 1 of {n:,} keys changed (info)",
                _t(r["incremental_s"]),
                _t(bare) + " (bare MULTI read)",
                f"{r['incremental_s'] / bare:.1f}x",
                "-",
                "-",
            )
        )
    elif item == "patch":
        sizes = r["sizes"]
        small, big = r["append"][0], r["append"][-1]
        for n, row, size in zip(sizes, r["append"], ("small", "medium", "large"), strict=True):
            p, w = row["patch"], row["whole"]
            rows.append(
                Row(
                    f"redis_append_{size}",
                    f"update('log', lambda v: v.append(m)) on a {n:,}-item pvector; bytes to Redis per append",
                    f"{_t(p['p50'])}, {p['bytes']:,.0f} B",
                    f"{_t(w['p50'])}, {w['bytes']:,.0f} B (whole value)",
                    f"{p['p50'] / w['p50']:.3f}x",
                    "≤ 2 ms",
                    _yes(p["p50"] <= 0.002),
                )
            )
        flat = big["patch"]["p50"] / small["patch"]["p50"]
        rows.append(
            Row(
                "redis_append_flat",
                f"append at {sizes[-1]:,} items vs at {sizes[0]:,} (patches)",
                _t(big["patch"]["p50"]),
                _t(small["patch"]["p50"]) + f" (at {sizes[0]:,})",
                f"{flat:.2f}x",
                "≤ 2x",
                _yes(flat <= 2.0),
            )
        )
        p, w = r["map"]["patch"], r["map"]["whole"]
        rows.append(
            Row(
                "redis_map_set",
                f"update('board', lambda m: m.set(k, v)) on a {sizes[-1]:,}-entry pmap; bytes per set",
                f"{_t(p['p50'])}, {p['bytes']:,.0f} B",
                f"{_t(w['p50'])}, {w['bytes']:,.0f} B (whole value)",
                f"{p['p50'] / w['p50']:.3f}x",
                "≤ 2 ms",
                _yes(p["p50"] <= 0.002),
            )
        )
        red, mem = r["classic"]["redis"], r["classic"]["memory"]
        rows.append(
            Row(
                "redis_append_classic",
                f"state['msgs'] = state['msgs'] + [m] at {sizes[-1]:,} items, Redis vs memory (info)",
                f"{_t(red['p50'])}, {red['bytes']:,.0f} B",
                _t(mem["p50"]) + " (memory)",
                f"{red['p50'] / mem['p50']:.2f}x",
                "-",
                "-",
            )
        )
        rows.append(
            Row(
                "redis_resync_big",
                f"resync: first use of a new store on one {r['resync_items']:,}-item pvector (info)",
                _t(r["resync_s"]),
                _t(r["resync_bare_s"]) + " (bare LRANGE)",
                f"{r['resync_s'] / r['resync_bare_s']:.1f}x",
                "-",
                "-",
            )
        )
        c = r["cross"]
        rows.append(
            Row(
                "redis_append_cross_p50",
                f"append at {c['items']:,} items in replica 1 → replica 2's mirror (watch), p50 of {c['writes']}",
                _t(c["p50"]) + f" (p99 {_t(c['p99'])})",
                "-",
                "-",
                "≤ 5 ms",
                _yes(c["p50"] <= 0.005),
            )
        )
    elif item == "click":
        red, mem = r["gc_on"]["redis"], r["gc_on"]["memory"]
        n = red["writes"]
        rows.append(
            Row(
                "redis_click_render",
                f"click in replica 1 → session of replica 2 re-rendered, p50 of {n}",
                _ms(red["p50"]),
                _ms(mem["p50"]) + " (1 server, memory)",
                f"{red['p50'] / mem['p50']:.2f}x",
                "≤ 100 ms",
                _yes(red["p50"] <= 0.100),
            )
        )
        rows.append(
            Row(
                "redis_click_render_p95",
                f"click in replica 1 → session of replica 2 re-rendered, p95 of {n} (info)",
                _ms(red["p95"]),
                _ms(mem["p95"]) + " (1 server, memory)",
                f"{red['p95'] / mem['p95']:.2f}x",
                "-",
                "-",
            )
        )
        red, mem = r["gc_off"]["redis"], r["gc_off"]["memory"]
        rows.append(
            Row(
                "redis_click_render_gc_off",
                f"the same, postScriptGC false, p50 of {red['writes']} (info)",
                _ms(red["p50"]),
                _ms(mem["p50"]) + " (1 server, memory)",
                f"{red['p50'] / mem['p50']:.2f}x",
                "-",
                "-",
            )
        )
    return rows


# Every row id, in table order (tests/test_benchmarks_smoke.py checks them).
ROW_IDS = [
    "redis_read",
    "redis_read_peek",
    "redis_update",
    "redis_set",
    "redis_cross_replica_p50",
    "redis_cross_replica_p99",
    "redis_resync",
    "redis_resync_incremental",
    "redis_append_small",
    "redis_append_medium",
    "redis_append_large",
    "redis_append_flat",
    "redis_map_set",
    "redis_append_classic",
    "redis_resync_big",
    "redis_append_cross_p50",
    "redis_click_render",
    "redis_click_render_p95",
    "redis_click_render_gc_off",
]


def render(rows: list[Row]) -> str:
    cols = ("benchmark", "redis", "baseline", "ratio", "target", "met")
    head = Row("", "redis backend", "redis", "baseline", "ratio", "target", "met")
    widths = {c: max(len(getattr(r, c)) for r in [head, *rows]) for c in cols}

    def line(r: Row) -> str:
        return "| " + " | ".join(getattr(r, c).ljust(widths[c]) for c in cols) + " |"

    sep = "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


NOTES = """\
Redis notes:
- One redis-server of the run's own on 127.0.0.1 (loopback TCP, no persistence), redis-py {redis_py},
  redis-server {redis_server}; each figure on a namespace of its own.
- read: median over {read_repeats} interleaved repeats of a loop of {read_loop:,} reads, minus the empty loop's cost,
  outside any session (no binding); the RedisStore reads its local mirror, no Redis call.
- update/set: median over {write_repeats} interleaved repeats of {write_loop} calls; each is one EVALSHA of the commit
  script, and the replica's own follower thread then reads the commit back from the stream (part of the cost).
  The floor: a redis-py client from redis.Redis.from_url(url) calling a registered `return 1` script.
- cross-replica: replica 2 is another process; time from before replica 1's `state["x"] = i` to replica 2's
  watch callback (CLOCK_MONOTONIC in both), the next write after replica 2 reported and 0.5-2.5 ms of idle.
- resync: median of {resync_repeats} new stores, from the first call (`peek`) to its return: PING, CONFIG GET, one
  MULTI (HGETALL values, HGETALL versions, meta, last stream id), decoding, threads started. Incremental: the
  same MULTI on a replica with its follower stopped after another replica changed 1 key (only it is decoded),
  median of {resync_incremental}. Bare MULTI read: the same four commands from redis-py, nothing decoded.
- patch: big values travel as patches. Appends via update on a pvector of chat messages (~80 bytes each) at
  each size: median of {patch_appends} after {patch_warmup} untimed; beside the same with patches turned off (the
  store's _patches = False: the whole value encoded and sent on every write, as before patches), median of
  {patch_whole}. Bytes: Redis' total_net_input_bytes per write (the commit, plus the XREAD calls of the
  replica's follower). Map: one entry set per update in a pmap of the largest size. Classic: the plain list
  assigned back (v + [m]) on Redis and on the memory backend. Resync: median of 3 new stores' first use on one
  pvector of {patch_resync_items:,} messages (WATCH + MULTI read, decode, build), beside a bare LRANGE of its
  Redis list. Cross: as cross-replica above, each write an append to a pvector of the largest size.
- click: apps/counter_app.py (the seed counter: lock, read, write) on two `streamlit run` replicas with
  SERVER_STATE_URL, from sending the click in replica 1's session to the script_finished of replica 2's
  session's first run showing the value; memory: the same two sessions on one server, writes alternating.
  Default server options (postScriptGC on: every run ends with a full gc.collect()), then postScriptGC off.
"""


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    try:
        out = subprocess.run(
            [redis_server_path() or "redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout
        server = next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), "?")
    except OSError:
        server = "?"
    return {"redis_py": version("redis"), "redis_server": server}


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------


def measure_in_child(item: str, mode: str, url: str) -> dict[str, Any]:
    """One figure in a fresh interpreter; its figures come back as JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.redis_bench", "--measure", item, "--url", url, f"--{mode}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT[mode],
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{item}: exit {proc.returncode}\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_all(mode: str, items: tuple[str, ...] = ITEMS) -> tuple[list[Row], dict[str, Any], list[str]]:
    """Every figure, on a redis-server of our own: rows, raw results, failures."""
    rows: list[Row] = []
    results: dict[str, Any] = {}
    failures: list[str] = []
    z = SIZES[mode]
    try:
        server = LocalRedis().start()
    except Exception as exc:
        return [], {}, [f"redis: {exc}"]
    try:
        log(f"redis-server on 127.0.0.1:{server.port}")
        for item in items:
            started = time.monotonic()
            try:
                if item in CHILD_ITEMS:
                    results[item] = measure_in_child(item, mode, server.url)
                else:
                    results[item] = asyncio.run(measure_click(server.url, z))
                rows += rows_for(item, results[item])
                log(f"{item}: {time.monotonic() - started:.1f} s")
            except Exception as exc:
                failures.append(f"redis {item}: {exc}")
                log(f"{item} FAILED")
    finally:
        server.close()
    return rows, results, failures


def report(mode: str, rows: list[Row], seconds: float) -> str:
    missed = [r.id for r in rows if r.met == "no"]
    parts = [
        f"server_state Redis backend figures ({mode} mode, {seconds:.0f} s)",
        "",
        render(rows),
        "",
        NOTES.format(**SIZES[mode], **_versions()),
    ]
    if mode == "smoke":
        parts.append("Smoke mode: tiny sizes, figures and 'met' are meaningless; only that every figure ran.")
    parts.append(f"Redis targets missed: {', '.join(missed) if missed else 'none'}")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.redis_bench", description=__doc__.split("\n\n")[0]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--full", action="store_const", dest="mode", const="full", help="stable sizes (default)"
    )
    size.add_argument(
        "--smoke", action="store_const", dest="mode", const="smoke", help="tiny sizes: does it run?"
    )
    parser.add_argument("--json", type=Path, help="also write rows and raw results here")
    parser.add_argument(
        "--only", default=",".join(ITEMS), help=f"comma-separated subset of {','.join(ITEMS)}"
    )
    # Internal: one figure in a child (JSON out), on the run's redis-server; replica 2 of ``cross``.
    parser.add_argument("--measure", choices=CHILD_ITEMS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--replica", nargs=2, metavar=("URL", "NAMESPACE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = args.mode or "full"
    if args.replica:
        return replica_main(*args.replica)
    if args.measure:
        print(json.dumps(MEASURES[args.measure](args.url, SIZES[mode])))
        return 0
    items = tuple(i.strip() for i in args.only.split(",") if i.strip())
    unknown = set(items) - set(ITEMS)
    if unknown:
        parser.error(f"unknown items: {sorted(unknown)}")
    started = time.monotonic()
    rows, results, failures = run_all(mode, items)
    print(report(mode, rows, time.monotonic() - started))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"mode": mode, "rows": [asdict(r) for r in rows], "results": results, "failures": failures},
                indent=1,
            )
        )
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
