"""SQLite backend figures (group ``sqlite``), each beside its floor measured in
the same run, on state files in a temporary directory: commits beside a bare
``sqlite3`` transaction, a commit until another process' mirror has it, a click
rendered across two ``streamlit run`` servers on one file, the start on a big
file, appends to a big pvector (time and WAL bytes), and a follower's idle CPU.
Rows, method and results: benchmarks/README.md, "The SQLite backend".

    python -m benchmarks.sqlite_bench [--full|--smoke] [--json out.json] [--only update,cross,...]
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ._core import ROOT, Group, Row, Target, by_mode, labelled, logger, pct, timed

SIZES = by_mode(  # name=(full, smoke)
    update_loop=(300, 20),  # update() calls per timed loop, synchronous=normal
    update_loop_full=(30, 5),  # the same, synchronous=full (each commit an fsync)
    update_repeats=(21, 3),
    cross_writes=(1_000, 20),
    cross_warmup=(20, 3),
    click_writes=(40, 2),
    click_warmup=(3, 1),
    start_keys=(100_000, 2_000),
    start_repeats=(5, 2),
    start_items=(1_000_000, 20_000),
    append_sizes=((1_000, 10_000, 100_000), (1_000, 2_000, 4_000)),
    append_timed=(300, 10),
    append_warmup=(30, 2),
    append_bytes=(50, 10),  # appends whose WAL frames are counted (under the auto-checkpoint)
    idle_seconds=(5.0, 0.5),
)

CROSS_GAP = 0.0005  # at least this idle between two cross-process writes, plus up to one poll
CHUNK = 1_000  # keys per transact when filling the state for the start figure
AUTOCHECKPOINT = 1_000  # SQLite's default wal_autocheckpoint, in pages

log = logger("sqlite")


# -- shared -------------------------------------------------------------------------


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory for the item's state files (removed after)."""
    with tempfile.TemporaryDirectory(prefix="server-state-sqlite-bench-") as d:
        yield Path(d)


def _url(path: Path, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")  # path is absolute: sqlite:////...


def sqlite_state(url: str) -> tuple[Any, Any]:
    """A ``ServerState`` on a new store over the SQLite file of ``url``, and that store (to close it)."""
    from server_state import ServerState
    from server_state._store import store_from_url

    store = store_from_url(url)
    return ServerState(store), store


def _ns_per_op(stmt: str, k: int, **names: Any) -> float:
    """Nanoseconds per ``stmt`` over a loop of ``k`` (timeit's loop), the cyclic GC on, as in an app."""
    return timeit.Timer(stmt, "gc.enable()", globals={"gc": gc, **names}).timeit(k) / k * 1e9


def _message(i: int) -> dict[str, Any]:
    return {"user": f"user{i % 30}", "text": f"message number {i} of the chat", "at": 1_700_000_000 + i}


# -- the figures; each returns a JSON-able dict (seconds, nanoseconds) ---------------


def _bare_update(path: Path, synchronous: str) -> Callable[[], None]:
    """``BEGIN IMMEDIATE; UPDATE t SET v = v + 1 WHERE k = ?; COMMIT`` on a WAL file of its own."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    conn.execute("INSERT INTO t VALUES ('c', 0)")
    execute = conn.execute

    def bare() -> None:
        execute("BEGIN IMMEDIATE")
        execute("UPDATE t SET v = v + 1 WHERE k = ?", ("c",))
        execute("COMMIT")

    return bare


def measure_update(z: dict[str, Any]) -> dict[str, Any]:
    """``update('c', lambda v: v + 1)`` on SQLite (synchronous normal and full)
    vs the bare transaction, and on the memory backend; interleaved rounds."""
    from server_state import ServerState

    out: dict[str, Any] = {"repeats": z["update_repeats"]}
    memory = ServerState()
    memory["c"] = 0
    with _workdir() as d:
        stores = []
        runs: dict[str, Callable[[], float]] = {}
        loops = {"normal": z["update_loop"], "full": z["update_loop_full"]}
        stmt = "state.update('c', lambda v: v + 1)"
        for sync, k in loops.items():
            state, store = sqlite_state(_url(d / f"ours-{sync}.db", synchronous=sync))
            stores.append(store)
            state["c"] = 0
            bare = _bare_update(d / f"bare-{sync}.db", sync)
            runs[f"{sync}_ours"] = lambda k=k, s=state: _ns_per_op(stmt, k, state=s)
            runs[f"{sync}_bare"] = lambda k=k, b=bare: _ns_per_op("bare()", k, bare=b)
        runs["memory"] = lambda: _ns_per_op(stmt, 1_000, state=memory)
        try:
            for fn in runs.values():  # untimed: code warm, files grown
                fn()
            samples: dict[str, list[float]] = {name: [] for name in runs}
            names = list(runs)
            for rep in range(z["update_repeats"]):
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    samples[name].append(runs[name]())
            out.update({f"{name}_ns": statistics.median(v) for name, v in samples.items()})
            out["loops"] = loops
        finally:
            for store in stores:
                store.close()
    return out


def replica_main(url: str) -> int:
    """Process B of ``cross``: print ``<value> <monotonic ns>`` as soon as the
    ``watch`` callback sees each new value of ``x``; exit when stdin closes."""
    state, store = sqlite_state(url)
    out = sys.stdout
    lock = threading.Lock()

    def seen(key: str, old: Any, new: Any) -> None:
        t = time.monotonic_ns()
        with lock:
            out.write(f"{new} {t}\n")
            out.flush()

    state.peek("x")  # starts the store: mirror loaded, follower running
    state.watch("x", seen)
    out.write("ready\n")
    out.flush()
    sys.stdin.read()  # until the parent closes the pipe (or dies)
    store.close()
    return 0


@contextlib.contextmanager
def _process_b(url: str) -> Iterator[IO[str]]:
    """Process B (``replica_main``), started and ready: yields its stdout, a
    line per value its watch callback saw; stopped by closing its stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sqlite_bench", "--replica", url],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        first = proc.stdout.readline().strip()
        if first != "ready":
            raise RuntimeError(f"process B did not start: {first!r}")
        yield proc.stdout
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure_cross(z: dict[str, Any]) -> dict[str, Any]:
    """``state["x"] = i`` in process A (this one) until process B's watch
    callback has it: seconds from before the commit to B's clock
    (CLOCK_MONOTONIC, one host), and of the commit call. Before each write,
    0.5 ms plus a random part of one poll period idle, so that writes land at
    every phase of B's poll."""
    with _workdir() as d:
        url = _url(d / "cross.db")
        state, store = sqlite_state(url)
        state["x"] = -1
        poll = store.committer.settings.poll
        rng = random.Random(3)
        latency: list[float] = []
        commit: list[float] = []
        try:
            with _process_b(url) as seen:
                for i in range(z["cross_warmup"] + z["cross_writes"]):
                    time.sleep(CROSS_GAP + rng.uniform(0, poll))
                    t0 = time.monotonic_ns()
                    state["x"] = i
                    t1 = time.monotonic_ns()
                    value, seen_ns = (int(x) for x in seen.readline().split())
                    if value != i:
                        raise RuntimeError(f"process B saw {value}, expected {i}")
                    if i >= z["cross_warmup"]:
                        latency.append((seen_ns - t0) / 1e9)
                        commit.append((t1 - t0) / 1e9)
        finally:
            store.close()
    return {
        "writes": len(latency),
        "poll": poll,
        "p50": pct(latency, 0.5),
        "p99": pct(latency, 0.99),
        "max": max(latency),
        "commit_p50": pct(commit, 0.5),
    }


def open_main(url: str, key: str, history: str) -> int:
    """``--open URL KEY HISTORY``: in a fresh process (a clean heap, as a server
    starts), print the seconds from ``store_from_url`` to the first read of
    ``key`` returning, the keys then in the state and the length of the value read."""
    from server_state import ServerState
    from server_state._store import store_from_url

    gc.collect()
    t0 = time.perf_counter()
    store = store_from_url(url)
    state = ServerState(store)
    if history != "default":
        state.configure(history=int(history))
    value = state.peek(key)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "keys": len(store), "len": len(value)}))
    store.close()
    return 0


def _first_use(url: str, key: str, history: str = "default") -> tuple[float, dict[str, int]]:
    """``open_main`` in a child process: its seconds, and the keys and the length it read."""
    cmd = [sys.executable, "-m", "benchmarks.sqlite_bench", "--open", url, key, history]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out.pop("seconds")), out


def measure_start(z: dict[str, Any]) -> dict[str, Any]:
    """Open + load: a file of N small keys, and a file of one M-item pvector
    of messages; beside the first, a bare read of its kv table on a new
    connection."""
    from pyrsistent import pvector

    n, m = z["start_keys"], z["start_items"]
    out: dict[str, Any] = {"keys": n, "items": m}
    with _workdir() as d:
        url = _url(d / "keys.db")
        writer, store = sqlite_state(url)
        t0 = time.perf_counter()
        for lo in range(0, n, CHUNK):
            chunk = {f"key{i}": f"value {i}" for i in range(lo, min(lo + CHUNK, n))}
            writer.transact(lambda s, chunk=chunk: s.update(chunk))
        out["fill_s"] = time.perf_counter() - t0
        store.close()
        first: list[float] = []
        quiet: list[float] = []
        bare: list[float] = []
        for _ in range(z["start_repeats"]):
            seconds, read = _first_use(url, "key0")
            first.append(seconds)
            assert read == {"keys": n, "len": len("value 0")}, read
            quiet.append(_first_use(url, "key0", history="0")[0])
            gc.collect()
            t0 = time.perf_counter()
            # The floor: the rows that hold the values, read and not decoded (the
            # checkpoint's table, and the log rows after the checkpoint).
            conn = sqlite3.connect(d / "keys.db")
            (checkpoint,) = conn.execute("SELECT value FROM meta WHERE name = 'checkpoint'").fetchone()
            rows = conn.execute("SELECT key, version, value FROM kv").fetchall()
            rows += conn.execute("SELECT seq, time, body FROM log WHERE seq > ?", (checkpoint,)).fetchall()
            bare.append(time.perf_counter() - t0)
            conn.close()
            assert rows
            del rows
        out.update(first_use_s=statistics.median(first), first_use_max_s=max(first))
        out["no_history_s"] = statistics.median(quiet)
        out["bare_read_s"] = statistics.median(bare)
        out["file_bytes"] = _file_bytes(d / "keys.db")

        url = _url(d / "big.db")
        writer, store = sqlite_state(url)
        t0 = time.perf_counter()
        writer["log"] = pvector(_message(i) for i in range(m))
        out["big_write_s"] = time.perf_counter() - t0
        store.close()
        del writer
        gc.collect()
        big = [_first_use(url, "log") for _ in range(z["start_repeats"])]
        assert all(read == {"keys": 1, "len": m} for _, read in big), big
        out["big_first_use_s"] = statistics.median(seconds for seconds, _ in big)
        out["big_file_bytes"] = _file_bytes(d / "big.db")
    return out


def _file_bytes(path: Path) -> int:
    return sum(os.stat(p).st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _wal_frames(path: Path, page: int) -> int:
    """Frames in the WAL file ``path``-wal (32-byte header, then frames of a page + 24 bytes)."""
    size = os.stat(f"{path}-wal").st_size
    return max(size - 32, 0) // (page + 24)


def measure_append(z: dict[str, Any]) -> dict[str, Any]:
    """``update('log', lambda v: v.append(m))`` on an n-item pvector of
    messages: seconds per append (p50 of the timed ones), and the WAL bytes
    per append (frames written, times page + 24 bytes, from a WAL truncated first and
    not checkpointed meanwhile)."""
    from pyrsistent import pvector

    out: dict[str, Any] = {"sizes": list(z["append_sizes"]), "append": []}
    counter = iter(range(10**9))
    with _workdir() as d:
        for n in z["append_sizes"]:
            path = d / f"append-{n}.db"
            state, store = sqlite_state(_url(path))
            side = sqlite3.connect(path, isolation_level=None)
            try:
                page = side.execute("PRAGMA page_size").fetchone()[0]
                state["log"] = pvector(_message(i) for i in range(n))

                def append(state: Any = state, n: int = n) -> None:
                    item = _message(n + next(counter))
                    state.update("log", lambda v: v.append(item))

                for _ in range(z["append_warmup"]):
                    append()
                gc.collect()
                times = [timed(append) for _ in range(z["append_timed"])]
                # Bytes: the WAL emptied (a TRUNCATE checkpoint), then appends, then its frames counted.
                busy, _, _ = side.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                assert busy == 0 and _wal_frames(path, page) == 0, "the WAL was not truncated"
                k = z["append_bytes"]
                for _ in range(k):
                    append()
                frames = _wal_frames(path, page)
                if frames >= AUTOCHECKPOINT:
                    raise RuntimeError(f"{frames} WAL frames: an auto-checkpoint may have restarted the WAL")
                assert len(state.peek("log")) == n + z["append_warmup"] + z["append_timed"] + k
            finally:
                side.close()
                store.close()
            row = {
                "n": n,
                "p50": statistics.median(times),
                "p99": pct(times, 0.99),
                "frames": frames / k,
                "bytes": frames * (page + 24) / k,
                "page": page,
            }
            out["append"].append(row)
            log(f"append at {n:,}: {row['p50'] * 1e6:.0f} µs, {row['frames']:.1f} WAL frames")
    return out


def measure_idle(z: dict[str, Any]) -> dict[str, Any]:
    """CPU of this process (user + system, getrusage) while its store follows
    a file nobody writes and the main thread sleeps: the follower's polls."""
    with _workdir() as d:
        url = _url(d / "idle.db")
        state, store = sqlite_state(url)
        try:
            state["k"] = 1
            poll = store.committer.settings.poll
            time.sleep(0.2)  # settled: the follower has seen this process' own commit
            seconds = z["idle_seconds"]
            before = resource.getrusage(resource.RUSAGE_SELF)
            w0 = time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - w0
            after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            store.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"poll": poll, "wall_s": wall, "cpu_s": cpu, "polls": wall / poll}


async def _click(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """Click "Increment" in a session of server A until a session of server B
    (another ``streamlit run``, same file) finished a run showing the new
    count; beside it, the same two sessions on one server with the memory
    backend; writes alternate."""
    from ._client import (
        COUNTER_APP,
        BenchSession,
        alternate_writes,
        close_all,
        connect_all,
        init_key,
        quiet_all,
        servers,
    )

    memory = {"SERVER_STATE_URL": "memory://", "SERVER_STATE_BENCH_LIB": "ours"}
    on_file = {**memory, "SERVER_STATE_URL": url}
    with servers(COUNTER_APP, {"A": on_file, "B": on_file, "memory": memory}, {}) as srv:
        await init_key(srv["A"], "click")
        await init_key(srv["memory"], "click")
        pairs = {
            name: (
                BenchSession(srv[a], query_string="key=click", name=f"{name}-A"),
                [BenchSession(srv[b], query_string="key=click", name=f"{name}-B")],
            )
            for name, a, b in (("sqlite", "A", "B"), ("memory", "memory", "memory"))
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


def measure_click(z: dict[str, Any]) -> dict[str, Any]:
    with _workdir() as d:
        return asyncio.run(_click(_url(d / "click.db"), z))


MEASURES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "update": measure_update,
    "cross": measure_cross,
    "click": measure_click,
    "start": measure_start,
    "append": measure_append,
    "idle": measure_idle,
}


# -- the table -----------------------------------------------------------------------

UPDATE = "update('c', lambda v: v + 1), synchronous={sync}, vs bare sqlite3 BEGIN IMMEDIATE; UPDATE; COMMIT"
CROSS = "commit in process A → process B's mirror (watch), poll {poll_ms:g} ms, p{q} of {writes:,}"
CLICK = "click in server A → session of server B re-rendered, one file, p{q} of {n}"
LABELS = {  # by row id, formatted with the item's figures
    "sqlite_update": UPDATE.replace("{sync}", "normal"),
    "sqlite_update_full": UPDATE.replace("{sync}", "full") + " (info)",
    "sqlite_update_memory": "update('c', lambda v: v + 1) on the memory backend (scale, info)",
    "sqlite_cross_p50": CROSS.replace("{q}", "50"),
    "sqlite_cross_p99": CROSS.replace("{q}", "99"),
    "sqlite_click_render": CLICK.replace("{q}", "50"),
    "sqlite_click_render_p95": CLICK.replace("{q}", "95") + " (info)",
    "sqlite_start": "start: store_from_url → first read, file of {keys:,} keys",
    "sqlite_start_no_history": "the same, history=0: no history rebuilt from the log (info)",
    "sqlite_start_big": "start: store_from_url → first read, one {items:,}-item pvector (info)",
    "sqlite_append": "update('log', lambda v: v.append(m)) on a {n:,}-item pvector; WAL bytes per append",
    "sqlite_append_flat": "append at {hi:,} items vs at {lo:,}: time",
    "sqlite_append_bytes_flat": "append at {hi:,} items vs at {lo:,}: WAL bytes per append",
    "sqlite_idle_cpu": "idle follower: CPU % of one core, file nobody writes, poll {poll_ms:g} ms (info)",
}


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    row = labelled(LABELS, **r)
    if item == "update":
        mem = f"(memory {r['memory_ns'] / 1e3:.2f} µs)"
        return [
            row(
                "sqlite_update",
                r["normal_ours_ns"] / 1e9,
                "s",
                Target(1.5, of="bare"),
                mem,
                base=r["normal_bare_ns"] / 1e9,
                base_note="(bare sqlite3)",
            ),
            row(
                "sqlite_update_full",
                r["full_ours_ns"] / 1e9,
                "s",
                None,
                mem,
                base=r["full_bare_ns"] / 1e9,
                base_note="(bare sqlite3)",
            ),
            row("sqlite_update_memory", r["memory_ns"] / 1e9, "s"),
        ]
    if item == "cross":
        row = labelled(LABELS, **r, poll_ms=r["poll"] * 1e3)
        return [
            row(
                "sqlite_cross_p50",
                r["p50"],
                "s",
                Target(0.020),
                f"(commit call {r['commit_p50'] * 1e6:.0f} µs)",
            ),
            row("sqlite_cross_p99", r["p99"], "s", Target(0.100), f"(max {r['max'] * 1e3:.2f} ms)"),
        ]
    if item == "click":
        row = labelled(LABELS, n=r["sqlite"]["writes"])
        mem = {"base_note": "(1 server, memory)"}
        return [
            row(
                "sqlite_click_render", r["sqlite"]["p50"], "ms", Target(0.150), base=r["memory"]["p50"], **mem
            ),
            row("sqlite_click_render_p95", r["sqlite"]["p95"], "ms", base=r["memory"]["p95"], **mem),
        ]
    if item == "start":
        size = f"({r['file_bytes'] / 1e6:.1f} MB file)"
        big = f"({r['big_file_bytes'] / 1e6:.1f} MB file; written in {r['big_write_s']:.1f} s)"
        bare = {"base": r["bare_read_s"], "base_note": "(bare SELECT of the rows)", "ratio_digits": 1}
        return [
            row("sqlite_start", r["first_use_s"], "s", Target(1.0), size, **bare),
            row("sqlite_start_no_history", r["no_history_s"], "s", None, size, **bare),
            row("sqlite_start_big", r["big_first_use_s"], "s", None, big),
        ]
    if item == "append":
        first, last = r["append"][0], r["append"][-1]
        lo, hi = first["n"], last["n"]

        def one(a: dict[str, Any], kind: str) -> Row:
            label = LABELS["sqlite_append"].format(n=a["n"])
            note = f"({a['bytes']:,.0f} B to the WAL: {a['frames']:.1f} pages)"
            return Row(f"sqlite_append_{kind}", label, a["p50"], "s", Target(0.002), note)

        row = labelled(LABELS, lo=lo, hi=hi)
        sized = zip(("small", "medium", "large"), r["append"], strict=True)
        at_lo = f"(at {lo:,})"
        return [
            *(one(a, kind) for kind, a in sized),
            row(
                "sqlite_append_flat",
                last["p50"],
                "s",
                Target(2.0, of=f"at {lo:,}"),
                base=first["p50"],
                base_note=at_lo,
            ),
            row(
                "sqlite_append_bytes_flat",
                last["bytes"],
                "",
                Target(2.0, of=f"at {lo:,}"),
                "B",
                base=first["bytes"],
                base_note="B " + at_lo,
            ),
        ]
    row = labelled(LABELS, poll_ms=r["poll"] * 1e3)
    per_poll = f"({r['cpu_s'] / r['polls'] * 1e6:.0f} µs CPU per poll, {r['wall_s']:.1f} s)"
    return [row("sqlite_idle_cpu", r["cpu_s"] / r["wall_s"] * 100, "% CPU", None, per_poll)]


NOTES = """\
SQLite notes: SQLite {sqlite} (Python's sqlite3), state files in a fresh temporary directory
({fs}), WAL, synchronous normal unless said, the default poll; every item in a child process.
update(): {update_repeats} rounds of {update_loop} calls (synchronous full: {update_loop_full}), interleaved with the bare
transaction and the memory backend. Cross-process writes: {cross_writes:,} after {cross_warmup}. Clicks: {click_writes} after
{click_warmup}. Starts: {start_repeats} on {start_keys:,} keys. Appends: {append_timed} timed after {append_warmup}, WAL bytes
over {append_bytes} more. Idle: {idle_seconds:g} s. How each figure is measured: benchmarks/README.md,
"The SQLite backend".
"""


def _filesystem() -> str:
    try:
        out = subprocess.run(
            ["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True, check=False
        ).stdout.split()
        return f"{tempfile.gettempdir()} on {out[-1]}" if len(out) > 1 else tempfile.gettempdir()
    except OSError:
        return tempfile.gettempdir()


GROUP = Group(
    module="benchmarks.sqlite_bench",
    title="server_state SQLite backend figures",
    head=("sqlite backend", "sqlite", "baseline", "ratio", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode], sqlite=sqlite3.sqlite_version, fs=_filesystem()),
    missed="SQLite targets missed",
    sizes=SIZES,
    measures=MEASURES,
    rows_for=rows_for,
    child_timeout={"full": 300.0, "smoke": 60.0},
)

if __name__ == "__main__":
    # ``--replica URL``: process B of ``cross``, in a process of its own.
    # ``--open URL KEY HISTORY``: one start of ``start``, in a fresh process.
    if sys.argv[1:2] == ["--replica"]:
        sys.exit(replica_main(sys.argv[2]))
    sys.exit(open_main(*sys.argv[2:5]) if sys.argv[1:2] == ["--open"] else GROUP.main())
