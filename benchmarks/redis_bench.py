"""Redis backend figures (group ``redis``), each beside its floor measured in the
same run, on a redis-server of the run's own: mirror reads, commits, cross-replica
latency, resyncs, big values as patches, and a click rendered across two
``streamlit run`` replicas. Rows, method and results: benchmarks/README.md.

    python -m benchmarks.redis_bench [--full|--smoke] [--json out.json] [--only read,write,...]
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from typing import IO, Any

from ._client import (
    COUNTER_APP,
    BenchSession,
    alternate_writes,
    close_all,
    connect_all,
    init_key,
    namespace,
    quiet_all,
    redis_server,
    redis_state,
    servers,
)
from ._core import ROOT, Group, Row, Target, attempt, by_mode, labelled, logger, pct, timed

SIZES = by_mode(  # name=(full, smoke)
    read_loop=(50_000, 5_000),
    read_repeats=(41, 3),
    write_loop=(500, 20),
    write_repeats=(21, 3),
    cpu_updates=(4_000, 200),
    cross_writes=(2_000, 30),
    cross_warmup=(50, 5),
    resync_keys=(10_000, 1_000),
    resync_repeats=(7, 2),
    resync_incremental=(21, 3),
    click_writes=(40, 2),
    click_warmup=(3, 1),
    patch_sizes=((1_000, 10_000, 100_000), (1_000, 2_000, 4_000)),
    patch_appends=(200, 10),
    patch_warmup=(50, 2),
    patch_whole=((50, 20, 5), (3, 2, 2)),
    patch_resync_items=(1_000_000, 20_000),
    patch_cross=(300, 10),
)

CROSS_GAP = (0.0005, 0.0025)  # seconds of idle between two cross-replica writes (uniform)
CHUNK = 1_000  # keys per transact when filling the state for the resync figures


log = logger("redis")


_next_value = iter(range(1, 1 << 62))  # a new value for every set


def _ns_per_op(stmt: str, k: int, **names: Any) -> float:
    """Nanoseconds per ``stmt`` over a loop of ``k`` whose body is ``stmt`` alone
    (timeit's loop), the cyclic GC on, as in an app."""
    return timeit.Timer(stmt, "gc.enable()", globals={"gc": gc, **names}).timeit(k) / k * 1e9


# -- the figures; each returns a JSON-able dict (seconds, nanoseconds) ---------------


def measure_read(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """Mirror reads of an int key, Redis mirror vs memory backend, interleaved."""
    from server_state import ServerState

    redis, store = redis_state(url, namespace("read"))
    states = {"memory": ServerState(), "redis": redis}
    try:
        for state in states.values():
            state["k"] = 1
            assert state["k"] == 1 and state.peek("k") == 1
        k, repeats = z["read_loop"], z["read_repeats"]
        loops = {"get": "state['k']", "peek": "state.peek('k')", "empty": "pass"}
        samples: dict[str, dict[str, list[float]]] = {b: {op: [] for op in loops} for b in states}
        for name in states:  # one untimed round: warm caches
            for stmt in loops.values():
                _ns_per_op(stmt, k // 10 or 1, state=states[name])
        for rep in range(repeats):
            order = list(states) if rep % 2 == 0 else list(states)[::-1]
            for name in order:
                for op, stmt in loops.items():
                    samples[name][op].append(_ns_per_op(stmt, k, state=states[name]))
        med = {b: {op: statistics.median(v) for op, v in ops.items()} for b, ops in samples.items()}
        out: dict[str, Any] = {"loop": k, "repeats": repeats}
        for op in ("get", "peek"):
            # the loop's own cost taken off
            out[op] = {f"{b}_ns": max(med[b][op] - med[b]["empty"], 0.1) for b in states}
            out[op].update({f"{b}_raw_ns": med[b][op] for b in states})
        out["empty_ns"] = {b: med[b]["empty"] for b in states}
        return out
    finally:
        store.close()


def measure_write(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """update() and a plain set on Redis vs a bare EVALSHA of ``return 1``."""
    import redis

    ns = namespace("write")
    state, store = redis_state(url, ns)
    client = redis.Redis.from_url(url)
    try:
        state["c"] = 0
        state["k"] = 0
        floor = client.register_script("return 1")
        assert floor() == 1  # loads the script: from now on every call is one EVALSHA
        k, repeats = z["write_loop"], z["write_repeats"]
        runs: dict[str, Callable[[], float]] = {
            "floor": lambda: _ns_per_op("floor()", k, floor=floor),
            "update": lambda: _ns_per_op("state.update('c', lambda v: v + 1)", k, state=state),
            "set": lambda: _ns_per_op("state['k'] = next(values)", k, state=state, values=_next_value),
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
        medians = {f"{name}_ns": statistics.median(v) for name, v in samples.items()}
        # Redis' side of an update: the commit script's own time (EVALSHA's
        # usec_per_call over updates alone), and Redis' CPU per commit with
        # 1 and 3 replicas following (the writer's own, and two more).
        script = _redis_per_update(client, state, z["cpu_updates"])
        followers = [redis_state(url, ns) for _ in range(2)]
        try:
            for other, _ in followers:
                other.peek("c")  # started: mirror loaded, follower reading the stream
            three = _redis_per_update(client, state, z["cpu_updates"])
        finally:
            for _, other_store in followers:
                other_store.close()
        return {
            "loop": k,
            "repeats": repeats,
            **medians,
            "script_ns": script["script_ns"],
            "cpu_1_ns": script["cpu_ns"],
            "cpu_3_ns": three["cpu_ns"],
            "xread_1": script["xread"],
            "xread_3": three["xread"],
        }
    finally:
        store.close()
        client.close()


def _redis_per_update(client: Any, state: Any, n: int) -> dict[str, float]:
    """Over ``n`` updates of ``c`` alone: the EVALSHA time Redis reports per
    call (``INFO commandstats``), Redis' CPU (user + system, ``INFO cpu``) per
    update, and the XREADs Redis served per update (the followers')."""

    def sample() -> tuple[float, dict[str, dict[str, float]]]:
        cpu = client.info("cpu")
        return cpu["used_cpu_user"] + cpu["used_cpu_sys"], client.info("commandstats")

    cpu0, stats0 = sample()
    for _ in range(n):
        state.update("c", lambda v: v + 1)
    cpu1, stats1 = sample()

    def delta(name: str, field: str) -> float:
        return float(stats1.get(name, {}).get(field, 0)) - float(stats0.get(name, {}).get(field, 0))

    calls = delta("cmdstat_evalsha", "calls")
    return {
        "script_ns": delta("cmdstat_evalsha", "usec") / max(calls, 1) * 1e3,
        "cpu_ns": (cpu1 - cpu0) / n * 1e9,
        "xread": delta("cmdstat_xread", "calls") / n,
    }


def replica_main(url: str, namespace: str) -> int:
    """Replica 2 of ``cross`` and ``patch``: print ``<value> <monotonic ns>``
    as soon as the ``watch`` callback sees each new value of ``x`` (of a
    sequence: its length); exit when stdin closes."""
    state, store = redis_state(url, namespace)
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
    store.close()
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


def _cross(
    url: str, name: str, first: Any, write: Callable[[Any, int], int], warmup: int, writes: int
) -> dict[str, Any]:
    """``state["x"] = first``, then ``write(state, i)`` in replica 1 (this process) until replica 2
    (another process) has it in its mirror: its watch callback reports the value ``write`` returns
    (of a sequence: its length). The next write after 0.5-2.5 ms idle. Seconds from before the
    commit to replica 2's clock (CLOCK_MONOTONIC in both), and of the commit call."""
    ns = namespace(name)
    state, store = redis_state(url, ns)
    state["x"] = first
    rng = random.Random(3)
    latency: list[float] = []
    commit: list[float] = []
    try:
        with _replica_two(url, ns) as seen:
            for i in range(warmup + writes):
                t0 = time.monotonic_ns()
                expected = write(state, i)
                t1 = time.monotonic_ns()
                value, seen_ns = (int(x) for x in seen.readline().split())
                if value != expected:
                    raise RuntimeError(f"replica 2 saw {value}, expected {expected}")
                if i >= warmup:
                    latency.append((seen_ns - t0) / 1e9)
                    commit.append((t1 - t0) / 1e9)
                time.sleep(rng.uniform(*CROSS_GAP))  # both replicas idle again before the next write
    finally:
        store.close()
    seen = {"p50": pct(latency, 0.5), "p99": pct(latency, 0.99), "max": max(latency)}
    return {"writes": len(latency), **seen, "commit_p50": pct(commit, 0.5), "commit_p99": pct(commit, 0.99)}


def measure_cross(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """Commit ``state["x"] = i`` in replica 1 until replica 2 has it in its mirror."""

    def write(state: Any, i: int) -> int:
        state["x"] = i
        return i

    return _cross(url, "cross", -1, write, z["cross_warmup"], z["cross_writes"])


def measure_resync(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """First use of a new store on N keys; a resync after 1 key changed; the
    bare read of the same hashes (one MULTI, as the store does) for scale."""
    import redis

    n = z["resync_keys"]
    ns = namespace("resync")
    writer, store = redis_state(url, ns)
    stores: list[Any] = [store]
    tag = "{ss:" + ns + "}"  # the store's keys (its Redis layout)
    client = redis.Redis.from_url(url)
    try:
        for lo in range(0, n, CHUNK):
            chunk = {f"key{i}": f"value {i}" for i in range(lo, min(lo + CHUNK, n))}
            writer.transact(lambda s, chunk=chunk: s.update(chunk))
        assert len(writer) == n

        def bare_read() -> float:
            t0 = time.perf_counter()
            pipe = client.pipeline(transaction=True)
            pipe.hgetall(f"{tag}:data")
            pipe.hgetall(f"{tag}:ver")
            pipe.hmget(f"{tag}:meta", ["epoch", "seq"])
            pipe.xrevrange(f"{tag}:log", "+", "-", count=1)
            data, versions, _, _ = pipe.execute()
            elapsed = time.perf_counter() - t0
            assert len(data) == len(versions) == n
            return elapsed

        bare_read()  # untimed: the connection is made
        first_use: list[float] = []
        floors: list[float] = []
        for _ in range(z["resync_repeats"]):
            fresh, fresh_store = redis_state(url, ns)
            stores.append(fresh_store)
            gc.collect()
            t0 = time.perf_counter()
            fresh.peek("key0")
            first_use.append(time.perf_counter() - t0)
            assert len(fresh) == n and fresh.peek(f"key{n - 1}") == f"value {n - 1}"
            fresh_store.close()
            floors.append(bare_read())

        # The incremental resync: a replica whose follower is stopped (closed,
        # so the stream does not bring it the change) resyncs after another
        # replica changed 1 key; only that key is decoded.
        lagging, lagging_store = redis_state(url, ns)
        stores.append(lagging_store)
        lagging.peek("key0")
        lagging_store.close()
        lagging_store.committer.resync()  # untimed: its connection is made again
        incremental: list[float] = []
        for rep in range(z["resync_incremental"]):
            key = f"key{rep * 7 % n}"
            writer[key] = f"changed {rep}"
            gc.collect()
            t0 = time.perf_counter()
            lagging_store.committer.resync()
            incremental.append(time.perf_counter() - t0)
            assert lagging.peek(key) == f"changed {rep}"
        first = {"first_use_s": statistics.median(first_use), "first_use_max_s": max(first_use)}
        times = {"incremental_s": statistics.median(incremental), "bare_read_s": statistics.median(floors)}
        return {"keys": n, **first, **times, "repeats": len(first_use)}
    finally:
        for store in stores:
            store.close()
        client.close()


def _message(i: int) -> dict[str, Any]:
    return {"user": f"user{i % 30}", "text": f"message number {i} of the chat", "at": 1_700_000_000 + i}


def _net_in(client: Any) -> int:
    return int(client.info("stats")["total_net_input_bytes"])


def _write_figures(state: Any, client: Any, fn: Callable[[], Any], warmup: int, k: int) -> dict[str, float]:
    """p50 of ``k`` writes after ``warmup`` untimed ones, and the bytes Redis
    received per write (every client of the run's Redis: the commit, plus
    the followers' XREAD calls)."""
    for _ in range(warmup):
        fn()
    gc.collect()
    before = _net_in(client)
    times = [timed(fn) for _ in range(k)]
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
        state, store = redis_state(url, namespace("patch"))
        stores.append(store)
        store.committer.patches = not whole
        return state

    out: dict[str, Any] = {"sizes": list(z["patch_sizes"]), "append": []}
    counter = iter(range(10**9))

    def patch_and_whole(
        key: str, value: Any, write: Callable[[Any, int], Any], k_whole: int
    ) -> dict[str, Any]:
        """``write(state, j)`` on ``state[key] = value``, with patches and with the whole value sent."""
        row: dict[str, Any] = {}
        for mode in ("patch", "whole"):
            state = fresh(whole=mode == "whole")
            state[key] = value
            k, warmup = (z["patch_appends"], z["patch_warmup"]) if mode == "patch" else (k_whole, 1)
            row[mode] = _write_figures(state, client, lambda s=state: write(s, next(counter)), warmup, k)
            assert state.version(key) >= 1 + warmup + k, (key, mode)  # each write committed
        return row

    def append(state: Any, j: int) -> None:
        state.update("log", lambda v: v.append(_message(j)))

    try:
        for n, k_whole in zip(z["patch_sizes"], z["patch_whole"], strict=True):
            row = patch_and_whole("log", pvector(_message(i) for i in range(n)), append, k_whole)
            out["append"].append(row)
            patch, whole = row["patch"]["p50"] * 1e3, row["whole"]["p50"] * 1e3
            log(f"patch: append at {n:,}: {patch:.2f} ms vs whole {whole:.2f} ms")
        n = z["patch_sizes"][-1]
        board = pmap({f"player{i}": i for i in range(n)})

        def set_one(state: Any, j: int) -> None:
            state.update("board", lambda m: m.set(f"player{j % n}", -1 - j))

        out["map"] = patch_and_whole("board", board, set_one, z["patch_whole"][-1])
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
        out["classic"] = classic
        # Resync: a new replica's first use on one big value.
        m = z["patch_resync_items"]
        writer = fresh()
        big_ns = stores[-1].committer.namespace
        big = "{ss:" + big_ns + "}:l:big"  # the value's Redis list (the store's layout)
        t0 = time.perf_counter()
        writer["big"] = pvector(_message(i) for i in range(m))
        out["resync_write_s"] = time.perf_counter() - t0
        resync: list[float] = []
        for _ in range(3):
            reader, reader_store = redis_state(url, big_ns)
            stores.append(reader_store)
            gc.collect()
            t0 = time.perf_counter()
            got = reader.peek("big")
            resync.append(time.perf_counter() - t0)
            assert len(got) == m
            reader_store.close()
        t0 = time.perf_counter()
        raw = client.lrange(big, 0, -1)
        out["resync_bare_s"] = time.perf_counter() - t0
        assert len(raw) == m
        del raw
        out["resync_items"] = m
        out["resync_s"] = statistics.median(resync)
        out["redis_memory_big"] = int(client.memory_usage(big) or 0)

        # Cross-replica: an append at n items until another process' mirror has it.
        def append(state: Any, i: int) -> int:
            state.update("x", lambda v: v.append(_message(n + i)))
            return n + i + 1  # the length replica 2 must report

        first = pvector(_message(i) for i in range(n))
        out["cross"] = {"items": n, **_cross(url, "patch-cross", first, append, 10, z["patch_cross"])}
        return out
    finally:
        for store in stores:
            store.close()
        client.close()


async def measure_click(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """The click figures with Streamlit's default options (``postScriptGC``
    on: a full ``gc.collect()`` at the end of every run), then with
    ``postScriptGC`` off, which leaves the part the backend itself adds."""
    gc_on = await _click(url, z, {})
    return {"gc_on": gc_on, "gc_off": await _click(url, z, {"runner.postScriptGC": "false"})}


async def _click(url: str, z: dict[str, Any], options: dict[str, str]) -> dict[str, Any]:
    """Click "Increment" in a session of replica 1 until a session of
    replica 2 finished a run showing the new count; beside it, the same two
    sessions on one server with the memory backend; writes alternate."""
    memory = {"SERVER_STATE_URL": "memory://", "SERVER_STATE_BENCH_LIB": "ours"}
    replica = {**memory, "SERVER_STATE_URL": url, "SERVER_STATE_NAMESPACE": namespace("click")}
    with servers(COUNTER_APP, {"replica1": replica, "replica2": replica, "memory": memory}, options) as srv:
        await init_key(srv["replica1"], "click")
        await init_key(srv["memory"], "click")
        pairs = {
            name: (
                BenchSession(srv[a], query_string="key=click", name=f"{name}-A"),
                [BenchSession(srv[b], query_string="key=click", name=f"{name}-B")],
            )
            for name, a, b in (("redis", "replica1", "replica2"), ("memory", "memory", "memory"))
        }
        try:
            for a, (b,) in pairs.values():
                await connect_all([a, b])
                await quiet_all([a, b])
            lat = await alternate_writes(pairs, z["click_warmup"], z["click_writes"])
        finally:
            for a, b in pairs.values():
                await close_all([a, *b])
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


# -- the table -----------------------------------------------------------------------

MS2, MS5 = Target(0.002), Target(0.005)
VS_EVALSHA = "on Redis vs bare EVALSHA 'return 1'"
MIRROR = "in replica 1 → replica 2's mirror (watch)"
CROSS = "commit " + MIRROR + ", 2 processes, p{q} of {writes:,}"
CLICK = "click in replica 1 → session of replica 2 re-rendered, p{q} of {n}"
LABELS = {  # by row id, formatted with the item's figures
    "redis_read": "read state['k'] of an int: Redis mirror vs memory backend",
    "redis_read_peek": "read state.peek('k') of an int: Redis mirror vs memory backend",
    "redis_update": "update('c', lambda v: v + 1) on Redis vs its floor: bare EVALSHA 'return 1' + the commit script's own time",
    "redis_update_evalsha": "update('c', lambda v: v + 1) " + VS_EVALSHA + " (info)",
    "redis_cpu_1": "Redis CPU per update (script, its writes, the followers' XREADs), 1 replica following",
    "redis_cpu_3": "Redis CPU per update, 3 replicas following",
    "redis_set": "state['k'] = i " + VS_EVALSHA + " (info)",
    "redis_cross_replica_p50": CROSS.replace("{q}", "50"),
    "redis_cross_replica_p99": CROSS.replace("{q}", "99"),
    "redis_resync": "resync: first use of a new store, {keys:,} keys of small values",
    "redis_resync_incremental": "resync after 1 of {keys:,} keys changed (info)",
    "redis_append": "update('log', lambda v: v.append(m)) on a {n:,}-item pvector; bytes to Redis per append",
    "redis_append_flat": "append at {hi:,} items vs at {lo:,} (patches)",
    "redis_map_set": "update('board', lambda m: m.set(k, v)) on a {hi:,}-entry pmap; bytes per set",
    "redis_append_classic": "state['msgs'] = state['msgs'] + [m] at {hi:,} items, Redis vs memory (info)",
    "redis_resync_big": "resync: first use of a new store on one {resync_items:,}-item pvector (info)",
    "redis_append_cross_p50": "append at {items:,} items " + MIRROR + ", p50 of {writes}",
    "redis_click_render": CLICK.replace("{q}", "50"),
    "redis_click_render_p95": CLICK.replace("{q}", "95") + " (info)",
    "redis_click_render_gc_off": "the same, postScriptGC false, p50 of {n_off} (info)",
}


def _bytes(figures: dict[str, Any], what: str = "") -> str:
    return f", {figures['bytes']:,.0f} B{what}"


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    row = labelled(LABELS, **r)
    if item == "read":
        mem = {"base_note": "(memory)", "target": Target(1.2, of="memory")}
        return [
            row(rid, r[op]["redis_ns"] / 1e9, "s", base=r[op]["memory_ns"] / 1e9, **mem)
            for rid, op in (("redis_read", "get"), ("redis_read_peek", "peek"))
        ]
    if item == "write":
        floor = {"base": r["floor_ns"] / 1e9, "base_note": "(EVALSHA)"}
        script = r["script_ns"] / 1e9
        both = {
            "base": r["floor_ns"] / 1e9 + script,
            "base_note": f"(EVALSHA {r['floor_ns'] / 1e3:.1f} µs + script {script * 1e6:.1f} µs)",
        }
        return [
            row("redis_update", r["update_ns"] / 1e9, "s", Target(1.5, of="the floor"), **both),
            row("redis_update_evalsha", r["update_ns"] / 1e9, "s", **floor),
            row("redis_set", r["set_ns"] / 1e9, "s", **floor),
            row("redis_cpu_1", r["cpu_1_ns"] / 1e9, "s", note=f"({r['xread_1']:.2f} XREAD per update)"),
            row(
                "redis_cpu_3",
                r["cpu_3_ns"] / 1e9,
                "s",
                Target(12e-6),
                f"({r['xread_3']:.2f} XREAD per update)",
            ),
        ]
    if item == "cross":
        commit = f"(commit call {r['commit_p50'] * 1e6:.1f} µs)"
        return [
            row("redis_cross_replica_p50", r["p50"], "s", MS5, commit),
            row("redis_cross_replica_p99", r["p99"], "s", Target(0.020), f"(max {r['max'] * 1e3:.2f} ms)"),
        ]
    if item == "resync":
        bare = {"base": r["bare_read_s"], "base_note": "(bare MULTI read)", "ratio_digits": 1}
        return [
            row("redis_resync", r["first_use_s"], "s", Target(1.0), **bare),
            row("redis_resync_incremental", r["incremental_s"], "s", **bare),
        ]
    if item == "patch":
        sizes, c, red, mem = r["sizes"], r["cross"], r["classic"]["redis"], r["classic"]["memory"]
        lo, hi = sizes[0], sizes[-1]
        row = labelled(LABELS, **r, lo=lo, hi=hi, items=c["items"], writes=c["writes"])
        first, last = (a["patch"]["p50"] for a in (r["append"][0], r["append"][-1]))
        at_lo = {"base": first, "base_note": f"(at {lo:,})"}
        classic = {"base": mem["p50"], "base_note": "(memory)"}
        lrange = {"base": r["resync_bare_s"], "base_note": "(bare LRANGE)", "ratio_digits": 1}
        sized = zip(("small", "medium", "large"), sizes, r["append"], strict=True)

        def vs_whole(rid: str, label: str, x: dict[str, Any]) -> Row:  # a patch beside the whole value
            whole = {"base": x["whole"]["p50"], "base_note": _bytes(x["whole"], " (whole value)")}
            return Row(rid, label, x["patch"]["p50"], "s", MS2, _bytes(x["patch"]), **whole, ratio_digits=3)

        return [
            *(vs_whole(f"redis_append_{k}", LABELS["redis_append"].format(n=n), a) for k, n, a in sized),
            row("redis_append_flat", last, "s", Target(2.0, of=f"at {lo:,}"), **at_lo),
            vs_whole("redis_map_set", LABELS["redis_map_set"].format(hi=hi), r["map"]),
            row("redis_append_classic", red["p50"], "s", None, _bytes(red), **classic),
            row("redis_resync_big", r["resync_s"], "s", **lrange),
            row("redis_append_cross_p50", c["p50"], "s", MS5, f"(p99 {c['p99'] * 1e3:.2f} ms)"),
        ]
    on, off = r["gc_on"], r["gc_off"]
    row = labelled(LABELS, n=on["redis"]["writes"], n_off=off["redis"]["writes"])
    mem = {"base_note": "(1 server, memory)"}
    return [
        row("redis_click_render", on["redis"]["p50"], "ms", Target(0.100), base=on["memory"]["p50"], **mem),
        row("redis_click_render_p95", on["redis"]["p95"], "ms", base=on["memory"]["p95"], **mem),
        row("redis_click_render_gc_off", off["redis"]["p50"], "ms", base=off["memory"]["p50"], **mem),
    ]


NOTES = """\
Redis notes: one redis-server of the run's own on 127.0.0.1 (loopback TCP, no persistence), redis-py {redis_py},
redis-server {redis_server}. Repeats x calls: reads {read_repeats} x {read_loop:,}, writes {write_repeats} x {write_loop};
new stores {resync_repeats}, incremental resyncs {resync_incremental}; appends {patch_appends} after {patch_warmup} untimed,
whole values {patch_whole} by size; one {patch_resync_items:,}-message pvector resynced. How each figure is measured:
benchmarks/README.md, "The Redis backend".
"""


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    from redis_support import redis_server_path

    try:
        out = subprocess.run(
            [redis_server_path() or "redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout
        server = next((w.split("=", 1)[1] for w in out.split() if w.startswith("v=")), "?")
    except OSError:
        server = "?"
    return {"redis_py": version("redis"), "redis_server": server}


def _click_rows(url: str, mode: str, results: dict[str, Any]) -> list[Row]:
    results["click"] = asyncio.run(measure_click(url, SIZES[mode]))
    return rows_for("click", results["click"])


def run_all(mode: str) -> tuple[list[Row], dict[str, Any], list[str]]:
    """Every figure, on a redis-server of our own: rows, raw results, failures (``click`` runs here)."""
    try:
        server = redis_server().start()
    except Exception as exc:
        return [], {}, [f"redis: {exc}"]
    try:
        GROUP.log(f"redis-server on 127.0.0.1:{server.port}")
        rows, results, failures = GROUP.run_items(mode, BENCH_REDIS_URL=server.url)
        rows += (
            attempt(GROUP.log, "redis click", lambda: _click_rows(server.url, mode, results), failures) or []
        )
    finally:
        server.close()
    return rows, results, failures


GROUP = Group(
    module="benchmarks.redis_bench",
    title="server_state Redis backend figures",
    head=("redis backend", "redis", "baseline", "ratio", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode], **_versions()),
    smoke="Smoke mode: tiny sizes, figures and 'met' are meaningless; only that every figure ran.",
    missed="Redis targets missed",
    run=run_all,
    sizes=SIZES,
    # In a child, on the run's redis-server (its URL in the environment).
    measures={name: lambda z, f=f: f(os.environ["BENCH_REDIS_URL"], z) for name, f in MEASURES.items()},
    rows_for=rows_for,
    child_timeout={"full": 240.0, "smoke": 60.0},
)

if __name__ == "__main__":
    # ``--replica URL NAMESPACE``: replica 2 of ``cross`` and ``patch``, in a process of its own.
    sys.exit(replica_main(*sys.argv[2:4]) if sys.argv[1:2] == ["--replica"] else GROUP.main())
