"""Benchmarks: server_state vs streamlit-server-state 0.20.2, one table.

    python -m benchmarks.run [--full|--smoke] [--json out.json] [--only GROUPS]

``--full`` (the default; ``make bench``) uses the sizes of issue #3 and
takes about eleven minutes on 2 cores. ``--smoke`` (run by ``make test``) uses
tiny counts and few sessions: it proves that every benchmark runs and
prints, and checks one correctness property exactly (unbound sessions are
never rerun); its figures mean nothing.

Both libraries are measured in the same run:

- ``micro``: ``apps/micro_app.py`` served by ``streamlit run`` and loaded by
  the headless protocol client; each microbenchmark runs in that one real
  session's script thread, both libraries in the same script run.
- ``propagation``, ``fanout``, ``unbound``: ``apps/counter_app.py`` on two
  servers side by side (one per library, same options); this one client
  process drives both, alternating the writes, so noise hits both alike.
- ``redis``: ``benchmarks/redis_bench.py``, the Redis backend beside its
  floors (memory-backend reads, a bare EVALSHA, a bare read of the hashes,
  one server on the memory backend), on a redis-server the run starts and
  stops; printed as a table of its own after the first.
- ``load``: ``benchmarks/load_chat.py``, 3 replicas x 30 sessions of a chat
  on one redis-server, 20 messages/s for 60 s: the same full history
  everywhere, no commit lost or doubled, no error or loop in any log; CPU
  per replica, Redis memory, bytes per message. Printed after redis's.
- ``soak``: ``benchmarks/soak.py``, ours alone on one server
  (``apps/soak_app.py``): 1,000 sessions connect, read and disconnect (no
  dead session left in the tracker, RSS back within 10%), then a background
  writer at 20 writes/s for 2 minutes under 50 sessions (all converge, no
  error, no loop); printed as a table of its own. Its smoke targets are real.
- ``failover``: ``benchmarks/failover.py``, tabs that outlive their
  replica: Chromium through nginx in front of two replicas on one
  redis-server (replica stopped -> websocket back -> current count shown),
  and 100 tabs of a stopped replica landing on the survivor (time, runs,
  spread).
- ``hardening``: ``benchmarks/hardening.py``, in-process figures of ours
  alone (no server), each item in a child process; printed after the soak's.
- ``history``: ``benchmarks/history_bench.py``, in-process figures of the
  history (memory kept, ``history()``, ``at()``, ``update()`` with history
  on and off), each item in a child process.
- ``purepy``: ``benchmarks/purepy_bench.py``, in-process figures on
  pyrsistent's pure-Python vector (what Python 3.13 gets): ``update``
  appends at 1k/10k/100k and an unchanged pyrsistent write, each item in a
  child process with the C extension blocked; printed as the last table.

Exit status: 0 when every benchmark ran, whether or not targets were met;
1 when one failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import failover, hardening, history_bench, load_chat, purepy_bench, redis_bench, soak
from ._client import BenchSession, StreamlitServer
from ._suite import finish, logger, section, yes

APPS = Path(__file__).resolve().parent / "apps"
MICRO_APP = APPS / "micro_app.py"
COUNTER_APP = APPS / "counter_app.py"
LIBS = ("ours", "upstream")
GROUPS = (
    "micro",
    "propagation",
    "fanout",
    "unbound",
    "redis",
    "load",
    "soak",
    "failover",
    "hardening",
    "history",
    "purepy",
)

MICRO_BENCHMARKS = (
    "snapshot",
    "read",
    "increment",
    "append_classic_1000",
    "append_classic_10000",
    "append_classic_100000",
    "append_update_1000",
    "append_update_10000",
    "append_update_100000",
    "memory_ours",
    "memory_upstream",
)

SETTINGS: dict[str, dict[str, int]] = {
    "full": {
        "propagation_writes": 100,
        "fanout_sessions": 100,
        "fanout_writes": 20,
        "unbound_sessions": 100,
        "unbound_bound": 10,
        "warmup_writes": 3,
    },
    "smoke": {
        "propagation_writes": 5,
        "fanout_sessions": 5,
        "fanout_writes": 3,
        "unbound_sessions": 10,
        "unbound_bound": 1,
        "warmup_writes": 1,
    },
}

# Every server: no file watcher (a benchmark must not depend on inotify),
# no Streamlit "magic" (a bare expression statement becomes an st.write).
BASE_OPTIONS = {"runner.magicEnabled": "false"}

SESSION_TIMEOUT = 300.0  # seconds, per wait; fan-out with postScriptGC on is slow
QUIET = 0.15  # seconds of silence that mean "every rerun has happened"


log = logger("bench")


# ---------------------------------------------------------------------------
# servers and sessions
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def servers(
    app: Path, names: tuple[str, ...], options: dict[str, str], env: dict[str, dict[str, str]]
) -> Iterator[dict[str, StreamlitServer]]:
    """Start one server per name concurrently; stop them all (by PID) at exit."""
    started: dict[str, StreamlitServer] = {}
    made = {
        name: StreamlitServer(
            app, options={**BASE_OPTIONS, **options}, env=env.get(name, {}), cwd=app.parent, keep_log=False
        )
        for name in names
    }
    try:
        with ThreadPoolExecutor(len(made)) as pool:
            futures = {name: pool.submit(server.start) for name, server in made.items()}
            errors = []
            for name, fut in futures.items():
                try:
                    fut.result()
                    started[name] = made[name]
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
        yield started
    finally:
        for server in made.values():
            server.stop()


async def connect_all(sessions: list[BenchSession], timeout: float) -> None:
    """Connect concurrently; on failure close what connected and re-raise."""
    results = await asyncio.wait_for(
        asyncio.gather(*(s.connect() for s in sessions), return_exceptions=True), timeout
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await close_all(sessions)
        raise errors[0]


async def close_all(sessions: list[BenchSession]) -> None:
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)


async def quiet_all(sessions: list[BenchSession], quiet: float = QUIET) -> None:
    await asyncio.gather(*(s.wait_quiet(quiet, timeout=SESSION_TIMEOUT) for s in sessions))


async def init_key(server: StreamlitServer, key: str) -> None:
    """Create ``key`` from a throwaway session before the measured sessions
    connect. Upstream reruns the session that creates the key from inside
    that session's first run, with ``session._client_state``, which before
    the session's first run has ended is empty: the query string (and with it
    ``key=``) is lost for that session from then on. Sessions that connect
    once the key exists never write in their first run and keep theirs."""
    session = BenchSession(server, query_string=f"key={key}", timeout=SESSION_TIMEOUT, name="init")
    await session.connect()
    await session.wait_quiet(QUIET, timeout=SESSION_TIMEOUT)
    await session.close()


_COUNT = re.compile(r"^count=(\d+)$")


def shown_count(session: BenchSession) -> int:
    for text in session.texts():
        m = _COUNT.match(text)
        if m:
            return int(m.group(1))
    raise LookupError(f"no count on the page:\n{session.describe()}")


async def one_write(writer: BenchSession, readers: list[BenchSession]) -> list[float]:
    """Click "Increment" in ``writer``; return, per reader, the seconds from
    sending the click to the end (``script_finished``) of that reader's first
    run that showed the new value. Returns once every session is quiet."""
    expected = f"count={shown_count(writer) + 1}"
    marks = [len(r.finished_log) for r in readers]
    w_mark = len(writer.finished_log)
    t0 = time.monotonic()
    await writer.click("Increment", wait=False)
    await asyncio.gather(
        *(
            r.wait_until(
                lambda r=r, m=m: r.first_finish_showing(expected, m) is not None,
                SESSION_TIMEOUT,
                what=f"a run showing {expected}",
            )
            for r, m in zip(readers, marks, strict=True)
        ),
        writer.wait_until(
            lambda: writer.first_finish_showing(expected, w_mark) is not None,
            SESSION_TIMEOUT,
            what=f"the writer's run showing {expected}",
        ),
    )
    latencies = [r.first_finish_showing(expected, m) - t0 for r, m in zip(readers, marks, strict=True)]  # type: ignore[operator]
    await quiet_all([writer, *readers])
    return latencies


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation between closest ranks."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# ---------------------------------------------------------------------------
# the benchmark groups
# ---------------------------------------------------------------------------


async def run_micro(mode: str) -> dict[str, Any]:
    """The in-session microbenchmarks: one session, one click per benchmark."""
    with tempfile.TemporaryDirectory(prefix="server-state-bench-") as tmp:
        out = Path(tmp) / "micro.json"
        env = {"ours": {"SERVER_STATE_BENCH_OUT": str(out)}}
        with servers(MICRO_APP, ("ours",), {}, env) as srv:
            server = srv["ours"]
            session = BenchSession(server, query_string=f"mode={mode}", timeout=SESSION_TIMEOUT, name="micro")
            await session.connect()
            try:
                for seq, name in enumerate(MICRO_BENCHMARKS, start=1):
                    started = time.monotonic()
                    await session.wait_quiet(QUIET, timeout=SESSION_TIMEOUT)
                    await session.click(f"run {name}", wait=False)
                    done, failed = f"done {name} {seq}", f"failed {name} {seq}"
                    await session.wait_until(
                        lambda done=done, failed=failed: any(
                            t.startswith((done, failed)) for t in session.runs_showing("")
                        ),
                        timeout=900,
                        what=f"benchmark {name}",
                    )
                    if any(t.startswith(failed) for t in session.runs_showing("")):
                        data = json.loads(out.read_text()) if out.exists() else {}
                        raise RuntimeError(
                            f"micro benchmark {name} failed:\n{data.get('error_' + name, '?')}"
                        )
                    log(f"micro {name}: {time.monotonic() - started:.1f} s")
            finally:
                await session.close()
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def counter_env() -> dict[str, dict[str, str]]:
    return {lib: {"SERVER_STATE_BENCH_LIB": lib} for lib in LIBS}


async def run_propagation(srv: dict[str, StreamlitServer], cfg: dict[str, int]) -> dict[str, Any]:
    """A clicks Increment; latency until B's run showing the new value ended."""
    for lib in LIBS:
        await init_key(srv[lib], "prop")
    pairs = {
        lib: [
            BenchSession(srv[lib], query_string="key=prop", timeout=SESSION_TIMEOUT, name=f"{lib}-{r}")
            for r in ("A", "B")
        ]
        for lib in LIBS
    }
    for sessions in pairs.values():
        await connect_all(sessions, SESSION_TIMEOUT)
    try:
        lat: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for i in range(cfg["warmup_writes"] + cfg["propagation_writes"]):
            order = LIBS if i % 2 == 0 else LIBS[::-1]
            for lib in order:
                a, b = pairs[lib]
                (t,) = await one_write(a, [b])
                if i >= cfg["warmup_writes"]:
                    lat[lib].append(t)
    finally:
        for sessions in pairs.values():
            await close_all(sessions)
    return {lib: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "samples": v} for lib, v in lat.items()}


async def run_fanout(srv: dict[str, StreamlitServer], cfg: dict[str, int], key: str) -> dict[str, Any]:
    """1 writer, N bound readers: time until all N finished a run showing the
    new value, per write; writes alternate between the libraries."""
    n = cfg["fanout_sessions"]
    groups: dict[str, tuple[BenchSession, list[BenchSession]]] = {}
    for lib in LIBS:
        await init_key(srv[lib], key)
        writer = BenchSession(srv[lib], query_string=f"key={key}", timeout=SESSION_TIMEOUT, name=f"{lib}-W")
        readers = [
            BenchSession(srv[lib], query_string=f"key={key}", timeout=SESSION_TIMEOUT, name=f"{lib}-{i}")
            for i in range(n)
        ]
        await connect_all([writer, *readers], SESSION_TIMEOUT * 2)
        groups[lib] = (writer, readers)
        await quiet_all([writer, *readers])
    try:
        per_write: dict[str, list[float]] = {lib: [] for lib in LIBS}
        for i in range(cfg["warmup_writes"] + cfg["fanout_writes"]):
            order = LIBS if i % 2 == 0 else LIBS[::-1]
            for lib in order:
                writer, readers = groups[lib]
                lat = await one_write(writer, readers)
                if i >= cfg["warmup_writes"]:
                    per_write[lib].append(max(lat))
    finally:
        for writer, readers in groups.values():
            await close_all([writer, *readers])
    return {
        lib: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "samples": v, "sessions": n}
        for lib, v in per_write.items()
    }


async def run_unbound(srv: dict[str, StreamlitServer], cfg: dict[str, int]) -> dict[str, Any]:
    """N sessions, of which ``bound`` read the key and the rest never do (one
    of those writes it with "Set", without reading it). Count every run that
    starts after the write, the writer's own click run excepted."""
    total, bound = cfg["unbound_sessions"], cfg["unbound_bound"]
    out: dict[str, Any] = {}
    for lib in LIBS:
        await init_key(srv[lib], "unbound")
        readers = [
            BenchSession(srv[lib], query_string="key=unbound", timeout=SESSION_TIMEOUT, name=f"{lib}-b{i}")
            for i in range(bound)
        ]
        others = [
            BenchSession(
                srv[lib], query_string="key=unbound&show=none", timeout=SESSION_TIMEOUT, name=f"{lib}-u{i}"
            )
            for i in range(total - bound)
        ]
        sessions = [*readers, *others]
        writer = others[-1]
        await connect_all(sessions, SESSION_TIMEOUT * 2)
        try:
            await quiet_all(sessions, 0.5)
            before = {id(s): shown_count(s) for s in readers}
            marks = {id(s): s.runs_started for s in sessions}
            await writer.click("Set")  # waits for the writer's own run
            reader_marks = [marks[id(r)] for r in readers]
            await asyncio.gather(
                *(
                    r.wait_until(
                        lambda r=r, m=m: r.runs_started > m and not r.run_in_progress,
                        SESSION_TIMEOUT,
                        what="a rerun after the write",
                    )
                    for r, m in zip(readers, reader_marks, strict=True)
                )
            )
            await quiet_all(sessions, 1.0)
            reader_runs = sum(s.runs_started - marks[id(s)] for s in readers)
            other_runs = sum(s.runs_started - marks[id(s)] for s in others) - 1  # the writer's click run
            updated = sum(1 for s in readers if shown_count(s) != before[id(s)])
            out[lib] = {
                "reruns": reader_runs + other_runs,
                "bound_reruns": reader_runs,
                "unbound_reruns": other_runs,
                "readers_updated": updated,
                "sessions": total,
                "bound": bound,
            }
        finally:
            await close_all(sessions)
    return out


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    benchmark: str
    ours: str
    upstream: str
    ratio: str
    target: str
    met: str  # "yes", "no", or "-" (information only)


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def _ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def micro_rows(m: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []

    def ratio_row(rid: str, label: str, limit: float | None, target: str) -> None:
        r = m[rid]
        ratio = r["ours_ns"] / r["upstream_ns"]
        met = "-" if limit is None else yes(ratio <= limit)
        rows.append(Row(rid, label, _us(r["ours_ns"]), _us(r["upstream_ns"]), f"{ratio:.2f}x", target, met))

    ratio_row("read", "read of a bound key, in session", 0.5, "≤ 0.5x upstream")
    ratio_row("increment", "counter +1: ours update() vs upstream lock+rw", 0.5, "≤ 0.5x upstream")
    ratio_row("increment_classic", "counter +1, both lock+rw (info)", None, "-")
    sizes = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("append_classic_"))
    for n in sizes:
        ratio_row(f"append_classic_{n}", f"append, classic code, n={n:,}", 1.0, "≤ 1.0x upstream")
    for n in sizes:
        r, up = m[f"append_update_{n}"], m[f"append_classic_{n}"]["upstream_ns"]
        target, met = ("≤ 20 µs", yes(r["ns"] <= 20_000)) if n == max(sizes) else ("-", "-")
        rows.append(
            Row(
                f"append_update_{n}",
                f"append, ours update() on pvector, n={n:,}",
                _us(r["ns"]),
                _us(up),
                f"{r['ns'] / up:.4f}x",
                target,
                met,
            )
        )
    lo, hi = min(sizes), max(sizes)
    flat = m[f"append_update_{hi}"]["ns"] / m[f"append_update_{lo}"]["ns"]
    rows.append(
        Row(
            "append_update_flat",
            f"append update(): n={hi:,} / n={lo:,}",
            f"{flat:.2f}x",
            "-",
            "-",
            "≤ 2x",
            yes(flat <= 2.0),
        )
    )
    for n in sizes:
        r = m[f"append_update_gcoff_{n}"]
        rows.append(
            Row(
                f"append_update_gcoff_{n}",
                f"append update(), GC off (info), n={n:,}",
                _us(r["ns"]),
                "-",
                "-",
                "-",
                "-",
            )
        )
    flat_off = m[f"append_update_gcoff_{hi}"]["ns"] / m[f"append_update_gcoff_{lo}"]["ns"]
    rows.append(
        Row(
            "append_update_gcoff_flat",
            f"append update(), GC off: n={hi:,} / n={lo:,} (info)",
            f"{flat_off:.2f}x",
            "-",
            "-",
            "-",
            "-",
        )
    )
    snap_sizes = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("snapshot_") and "after" not in k)
    for n in snap_sizes:
        r = m[f"snapshot_{n}"]
        rows.append(
            Row(
                f"snapshot_{n}",
                f"snapshot(), {r['ours_keys']:,} keys (upstream: dict(state))",
                _us(r["ours_ns"]),
                _us(r["upstream_ns"]),
                f"{r['ours_ns'] / r['upstream_ns']:.5f}x",
                "≤ 2 µs",
                yes(r["ours_ns"] <= 2000),
            )
        )
    for n in snap_sizes:
        r = m[f"snapshot_after_write_{n}"]
        rows.append(
            Row(
                f"snapshot_after_write_{n}",
                f"snapshot() right after a write, {r['ours_keys']:,} keys",
                _us(r["ns"]),
                "-",
                "-",
                "≤ 2 µs",
                yes(r["ns"] <= 2000),
            )
        )
    mo, mu = m["memory_ours"], m["memory_upstream"]
    rows.append(
        Row(
            "memory",
            f"memory: {mo['snapshots']:,} snapshots kept while appending, n={mo['n']:,}",
            f"{mo['ratio']:.2f}x one copy",
            f"{mu['ratio']:.2f}x one copy",
            f"{mo['ratio'] / mu['ratio']:.3f}x",
            "≤ 1.5x one copy",
            yes(mo["ratio"] <= 1.5),
        )
    )
    held = m["append_snapshots_held"]
    rows.append(
        Row(
            "append_snapshots_held",
            f"append update() with {held['snapshots']:,} snapshots held, n={held['n']:,} (info)",
            _us(held["ours_ns"]),
            _us(mu["append_ns_gc_off"]) + " (GC off)",
            "-",
            "-",
            "-",
        )
    )
    return rows


def cross_rows(results: dict[str, Any], cfg: dict[str, int]) -> list[Row]:
    rows: list[Row] = []
    prop = results.get("propagation")
    if prop is not None:
        o, u = prop["ours"], prop["upstream"]
        n = len(o["samples"])
        rows.append(
            Row(
                "propagation_p50",
                f"propagation A→B, p50 of {n} writes",
                _ms(o["p50"]),
                _ms(u["p50"]),
                f"{o['p50'] / u['p50']:.2f}x",
                "≤ upstream, ≤ 100 ms",
                yes(o["p50"] <= u["p50"] and o["p50"] <= 0.100),
            )
        )
        rows.append(
            Row(
                "propagation_p95",
                f"propagation A→B, p95 of {n} writes",
                _ms(o["p95"]),
                _ms(u["p95"]),
                f"{o['p95'] / u['p95']:.2f}x",
                "≤ upstream",
                yes(o["p95"] <= u["p95"]),
            )
        )
    for gc_on in (False, True):
        fan = results.get(f"fanout_gc_{'on' if gc_on else 'off'}")
        if fan is None:
            continue
        o, u = fan["ours"], fan["upstream"]
        rows.append(
            Row(
                f"fanout_gc_{'on' if gc_on else 'off'}",
                f"fan-out to {o['sessions']} sessions, p50 of {len(o['samples'])} writes, "
                f"postScriptGC {'true' if gc_on else 'false'}",
                _ms(o["p50"]),
                _ms(u["p50"]),
                f"{o['p50'] / u['p50']:.2f}x",
                "≤ upstream",
                yes(o["p50"] <= u["p50"]),
            )
        )
    unb = results.get("unbound")
    if unb is not None:
        o, u = unb["ours"], unb["upstream"]
        rows.append(
            Row(
                "unbound",
                f"reruns after 1 write, {o['sessions']} sessions of which "
                f"{o['sessions'] - o['bound']} never read the key",
                str(o["reruns"]),
                str(u["reruns"]),
                "-",
                f"exactly {o['bound']}",
                yes(o["reruns"] == o["bound"] and o["readers_updated"] == o["bound"]),
            )
        )
    return rows


HEAD = Row("", "benchmark", "ours", "upstream", "ratio", "target", "met")


NOTES = """\
Notes:
- upstream = streamlit-server-state {upstream_version}; ours = server_state {ours_version} at {revision}. Streamlit {st_version},
  Python {python}, {cpus} CPUs. Ratio = ours / upstream (lower is better for ours).
- In-session figures (µs, ms per operation): median over repeats of a timed loop in the script thread of
  one real session (apps/micro_app.py), both libraries in the same script run, repeats interleaved, GC on.
- Upstream's writes run inside upstream's own `no_rerun` (its writer reruns itself mid-run otherwise,
  which restarts the benchmark run); that still pays its repr() hash. Ours run in normal mode.
- "append ... update() on pvector": the upstream column is upstream's classic append at the same n.
- snapshot(): upstream has none; its column is `dict(server_state)` (a copy, for scale only). "right
  after a write": one key written (untimed) before each timed snapshot() call.
- memory: bytes still allocated after the appends (tracemalloc for ours; upstream: tracemalloc for the
  copy, sys.getsizeof for the lists and hash it keeps), divided by one copy of the n-item value.
- propagation: default server options (fastReruns and postScriptGC on), seed counter app, same code
  for both libraries; time from sending A's click to B's script_finished of a run showing the value.
- fan-out: 1 writer + N readers per server, time until the last reader finished a run showing the value.
- unbound: reruns counted on every session after one write by a session that does not read the key.
"""


def _git_revision() -> str:
    """The commit measured (``+dirty`` when server_state/ has uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "server_state"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def environment() -> dict[str, str]:
    import streamlit

    return {
        "revision": _git_revision(),
        "upstream_version": version("streamlit-server-state"),
        "ours_version": version("server-state"),
        "st_version": streamlit.__version__,
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
    }


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


async def run_cross(mode: str, groups: set[str], results: dict[str, Any], failures: list[str]) -> None:
    cfg = SETTINGS[mode]

    async def guarded(name: str, fn: Callable[[], Any]) -> None:
        started = time.monotonic()
        try:
            results[name] = await fn()
            log(f"{name}: {time.monotonic() - started:.1f} s")
        except Exception:
            failures.append(f"{name}:\n{traceback.format_exc()}")
            log(f"{name} FAILED")

    if groups & {"propagation", "fanout"}:
        with servers(COUNTER_APP, LIBS, {}, counter_env()) as srv:  # postScriptGC on: Streamlit's default
            if "propagation" in groups:
                await guarded("propagation", lambda: run_propagation(srv, cfg))
            if "fanout" in groups:
                await guarded("fanout_gc_on", lambda: run_fanout(srv, cfg, "fan_on"))
    if groups & {"fanout", "unbound"}:
        with servers(COUNTER_APP, LIBS, {"runner.postScriptGC": "false"}, counter_env()) as srv:
            if "fanout" in groups:
                await guarded("fanout_gc_off", lambda: run_fanout(srv, cfg, "fan_off"))
            if "unbound" in groups:
                await guarded("unbound", lambda: run_unbound(srv, cfg))


# The groups printed as tables of their own, in the order they run and print; all run after the
# cross-session servers have stopped: redis and soak start servers of their own, and hardening and
# history are in-process figures that want nothing else on the CPUs. Each gives
# run_all(mode) -> (rows, raw results, failures) and report(mode, rows, seconds) -> text.
RunAll = Callable[[str], tuple[list[Any], Any, list[str]]]
Report = Callable[[str, list[Any], float], str]
TABLES: dict[str, tuple[RunAll, Report]] = {
    "redis": (redis_bench.run_all, redis_bench.report),
    "load": (load_chat.run_all, load_chat.table_report),
    "soak": (soak.run_all, soak.report),
    "failover": (failover.run_all, failover.report),
    "hardening": (hardening.run_all, hardening.report),
    "history": (history_bench.run_all, history_bench.report),
    "purepy": (purepy_bench.run_all, purepy_bench.report),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--full", action="store_const", dest="mode", const="full", help="issue #3's sizes (default)"
    )
    size.add_argument(
        "--smoke", action="store_const", dest="mode", const="smoke", help="tiny sizes: does it run?"
    )
    parser.add_argument("--json", type=Path, help="also write rows and raw results here")
    parser.add_argument(
        "--only", default=",".join(GROUPS), help=f"comma-separated subset of {','.join(GROUPS)}"
    )
    args = parser.parse_args(argv)
    mode = args.mode or "full"
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = groups - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {sorted(unknown)}")

    started = time.monotonic()
    results: dict[str, Any] = {}
    failures: list[str] = []
    if "micro" in groups:
        try:
            results["micro"] = asyncio.run(run_micro(mode))
        except Exception:
            failures.append(f"micro:\n{traceback.format_exc()}")
            log("micro FAILED")
    asyncio.run(run_cross(mode, groups, results, failures))
    tables: dict[str, tuple[list[Any], float]] = {}  # group -> its rows, its seconds
    for name, (run_all, _) in TABLES.items():
        if name in groups:
            table_started = time.monotonic()
            table_rows, results[name], table_failures = run_all(mode)
            tables[name] = (table_rows, time.monotonic() - table_started)
            failures += table_failures

    rows: list[Row] = []
    if "micro" in results:
        try:
            rows += micro_rows(results["micro"])
        except Exception:
            failures.append(f"micro table:\n{traceback.format_exc()}")
    rows += cross_rows(results, SETTINGS[mode])
    env = environment()
    title = f"server_state benchmarks ({mode} mode, {time.monotonic() - started:.0f} s)"
    print(title)
    if groups & {"micro", "propagation", "fanout", "unbound"}:  # else the table would be empty
        print()
        smoke = "Smoke mode: tiny sizes, figures and 'met' are meaningless; only that every benchmark ran."
        print(section(rows, HEAD, NOTES.format(**env), smoke if mode == "smoke" else None, "Targets missed"))
    for name, (_, report) in TABLES.items():
        if name in tables:
            print()
            print(report(mode, *tables[name]))
    output = {
        "mode": mode,
        "environment": env,
        "rows": [asdict(r) for r in rows],
        **{f"{name}_rows": [asdict(r) for r in tables[name][0]] if name in tables else [] for name in TABLES},
        "results": results,
        "failures": failures,
    }
    return finish(args.json, output, failures)


if __name__ == "__main__":
    sys.exit(main())
