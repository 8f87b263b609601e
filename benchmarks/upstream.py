"""server_state beside streamlit-server-state 0.20.2 (upstream), both in the
same run: the first table of ``benchmarks.run`` (groups micro, propagation,
fanout, unbound; how each measures: benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from ._client import (
    APPS,
    COUNTER_APP,
    QUIET,
    SESSION_TIMEOUT,
    BenchSession,
    alternate_writes,
    close_all,
    connect_all,
    init_key,
    quiet_all,
    servers,
    shown_count,
)
from ._core import ROOT, Row, Target, attempt, by_mode, logger, pct, render

GROUPS = ("micro", "propagation", "fanout", "unbound")
LIBS = ("ours", "upstream")
HEAD = ("benchmark", "ours", "upstream", "ratio", "target", "met")
APPENDS = (f"append_{kind}_{n}" for kind in ("classic", "update") for n in (1_000, 10_000, 100_000))
# the app's buttons
MICRO_BENCHMARKS = ("snapshot", "read", "increment", *APPENDS, "memory_ours", "memory_upstream")
SETTINGS = by_mode(  # name=(full, smoke)
    propagation_writes=(100, 5),
    fanout_sessions=(100, 5),
    fanout_writes=(20, 3),
    unbound_sessions=(100, 10),
    unbound_bound=(10, 1),
    warmup_writes=(3, 1),
)
LIB_ENV = {lib: {"SERVER_STATE_BENCH_LIB": lib} for lib in LIBS}

log = logger("bench")


async def run_micro(mode: str) -> dict[str, Any]:
    """The in-session microbenchmarks: one session, one click per benchmark."""
    with tempfile.TemporaryDirectory(prefix="server-state-bench-") as tmp:
        out = Path(tmp) / "micro.json"
        with servers(APPS / "micro_app.py", {"ours": {"SERVER_STATE_BENCH_OUT": str(out)}}, {}) as srv:
            session = BenchSession(srv["ours"], query_string=f"mode={mode}", name="micro")
            await session.connect()
            try:
                for seq, name in enumerate(MICRO_BENCHMARKS, start=1):
                    started = time.monotonic()
                    await session.wait_quiet(QUIET, timeout=SESSION_TIMEOUT)
                    await session.click(f"run {name}", wait=False)
                    done, failed = f"done {name} {seq}", f"failed {name} {seq}"
                    await session.wait_until(
                        lambda ends=(done, failed): any(t.startswith(ends) for t in session.runs_showing("")),
                        timeout=900,
                        what=f"benchmark {name}",
                    )
                    if any(t.startswith(failed) for t in session.runs_showing("")):
                        data = json.loads(out.read_text()) if out.exists() else {}
                        error = data.get("error_" + name, "?")
                        raise RuntimeError(f"micro benchmark {name} failed:\n{error}")
                    log(f"micro {name}: {time.monotonic() - started:.1f} s")
            finally:
                await session.close()
        return json.loads(out.read_text())  # type: ignore[no-any-return]


def _latencies(lat: dict[str, list[float]], **extra: Any) -> dict[str, Any]:
    return {lib: {"p50": pct(v, 0.5), "p95": pct(v, 0.95), "samples": v, **extra} for lib, v in lat.items()}


async def run_writes(srv: dict[str, Any], cfg: dict[str, int], key: str, readers: int) -> dict[str, Any]:
    """Per library, 1 writer and ``readers`` bound readers of ``key``: the time
    from the writer's click until the last reader finished a run showing the
    new value, per write; writes alternate between the libraries."""
    pairs: dict[str, tuple[BenchSession, list[BenchSession]]] = {}
    try:
        for lib in LIBS:
            await init_key(srv[lib], key)
            made = [
                BenchSession(srv[lib], query_string=f"key={key}", name=f"{lib}-{i}")
                for i in range(readers + 1)
            ]
            await connect_all(made)
            pairs[lib] = (made[0], made[1:])
            await quiet_all(made)
        writes = cfg["propagation_writes"] if readers == 1 else cfg["fanout_writes"]
        lat = await alternate_writes(pairs, cfg["warmup_writes"], writes, max)
    finally:
        for writer, others in pairs.values():
            await close_all([writer, *others])
    return _latencies(lat, **({"sessions": readers} if readers > 1 else {}))


async def run_unbound(srv: dict[str, Any], cfg: dict[str, int]) -> dict[str, Any]:
    """N sessions, of which ``bound`` read the key and the rest never do (one
    of those writes it with "Set", without reading it). Count every run that
    starts after the write, the writer's own click run excepted."""
    total, bound = cfg["unbound_sessions"], cfg["unbound_bound"]
    out: dict[str, Any] = {}
    for lib in LIBS:
        await init_key(srv[lib], "unbound")
        readers = [
            BenchSession(srv[lib], query_string="key=unbound", name=f"{lib}-b{i}") for i in range(bound)
        ]
        others = [
            BenchSession(srv[lib], query_string="key=unbound&show=none", name=f"{lib}-u{i}")
            for i in range(total - bound)
        ]
        sessions = [*readers, *others]
        await connect_all(sessions)
        try:
            await quiet_all(sessions, 0.5)
            before = {id(s): shown_count(s) for s in readers}
            marks = {id(s): s.runs_started for s in sessions}
            reader_marks = [marks[id(r)] for r in readers]
            await others[-1].click("Set")  # waits for the writer's own run
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
            reruns = {"reruns": reader_runs + other_runs, "bound_reruns": reader_runs}
            updated = sum(1 for s in readers if shown_count(s) != before[id(s)])
            figures = {"unbound_reruns": other_runs, "readers_updated": updated, "sessions": total}
            out[lib] = {**reruns, **figures, "bound": bound}
        finally:
            await close_all(sessions)
    return out


def run_cross(mode: str, groups: set[str], results: dict[str, Any], failures: list[str]) -> None:
    cfg = SETTINGS[mode]
    loop = asyncio.new_event_loop()

    def guarded(name: str, fn: Callable[[], Any]) -> None:
        results[name] = attempt(log, name, lambda: loop.run_until_complete(fn()), failures)

    try:
        if groups & {"propagation", "fanout"}:
            with servers(COUNTER_APP, LIB_ENV, {}) as srv:  # postScriptGC on: Streamlit's default
                if "propagation" in groups:
                    guarded("propagation", lambda: run_writes(srv, cfg, "prop", 1))
                if "fanout" in groups:
                    guarded("fanout_gc_on", lambda: run_writes(srv, cfg, "fan_on", cfg["fanout_sessions"]))
        if groups & {"fanout", "unbound"}:
            with servers(COUNTER_APP, LIB_ENV, {"runner.postScriptGC": "false"}) as srv:
                if "fanout" in groups:
                    guarded("fanout_gc_off", lambda: run_writes(srv, cfg, "fan_off", cfg["fanout_sessions"]))
                if "unbound" in groups:
                    guarded("unbound", lambda: run_unbound(srv, cfg))
    finally:
        loop.close()


# -- the table -----------------------------------------------------------------------

HALF, NOT_WORSE = Target(0.5, of="upstream"), Target(1.0, of="upstream")


LABELS = {  # by row id, or its shape (without "_<n>"), formatted with the item's figures
    "read": "read of a bound key, in session",
    "increment": "counter +1: ours update() vs upstream lock+rw",
    "increment_classic": "counter +1, both lock+rw (info)",
    "append_classic": "append, classic code, n={n:,}",
    "append_update": "append, ours update() on pvector, n={n:,}",
    "append_update_flat": "append update(): n={hi:,} / n={lo:,}",
    "append_update_gcoff": "append update(), GC off (info), n={n:,}",
    "append_update_gcoff_flat": "append update(), GC off: n={hi:,} / n={lo:,} (info)",
    "snapshot": "snapshot(), {keys:,} keys (upstream: dict(state))",
    "snapshot_after_write": "snapshot() right after a write, {keys:,} keys",
    "memory": "memory: {snapshots:,} snapshots kept while appending, n={n:,}",
    "append_snapshots_held": "append update() with {snapshots:,} snapshots held, n={n:,} (info)",
    "propagation": "propagation A→B, p{q} of {n} writes",
    "fanout": "fan-out to {sessions} sessions, p50 of {n} writes, postScriptGC {gc}",
    "unbound": "reruns after 1 write, {sessions} sessions of which {never} never read the key",
}


def micro_rows(m: dict[str, Any]) -> list[Row]:
    sizes = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("append_classic_"))
    lo, hi = min(sizes), max(sizes)
    snaps = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("snapshot_") and "after" not in k)
    figures = {k: v for k, v in m.items() if isinstance(v, dict)}
    s = {k: v.get("ns", v.get("ours_ns", 0)) / 1e9 for k, v in figures.items()}  # ours, in seconds
    up = {k: v["upstream_ns"] / 1e9 for k, v in figures.items() if "upstream_ns" in v}
    mo, mu, cap = m["memory_ours"], m["memory_upstream"], {hi: Target(20e-6)}  # cap: at the largest n
    copy = {"note": "one copy", "base": mu["ratio"], "base_note": "one copy", "ratio_digits": 3}

    def row(shape: str, n: int | None = None, target: Target | None = None, **kw: Any) -> Row:
        """Row ``shape`` (or ``shape_<n>``): ours in seconds, upstream's (when any) its base."""
        rid = shape if n is None else f"{shape}_{n}"
        label = LABELS[shape].format(**m[rid], keys=m[rid].get("ours_keys"))
        return Row(rid, label, s[rid], "s", target, **{"base": up.get(rid), **kw})

    def flat(shape: str, target: Target | None = None) -> Row:
        """Row ``shape_flat``: the figure at the largest n / at the smallest."""
        label = LABELS[f"{shape}_flat"].format(lo=lo, hi=hi)
        return Row(f"{shape}_flat", label, s[f"{shape}_{hi}"] / s[f"{shape}_{lo}"], "x", target)

    return [
        row("read", None, HALF),
        row("increment", None, HALF),
        row("increment_classic"),
        *(row("append_classic", n, NOT_WORSE) for n in sizes),
        *(row("append_update", n, cap.get(n), base=up[f"append_classic_{n}"], ratio_digits=4) for n in sizes),
        flat("append_update", Target(2.0)),
        *(row("append_update_gcoff", n) for n in sizes),
        flat("append_update_gcoff"),
        *(row("snapshot", n, Target(2e-6), ratio_digits=5) for n in snaps),
        *(row("snapshot_after_write", n, Target(2e-6)) for n in snaps),
        Row("memory", LABELS["memory"].format(**mo), mo["ratio"], "x", Target(1.5, note="one copy"), **copy),
        row("append_snapshots_held", base=mu["append_ns_gc_off"] / 1e9, base_note="(GC off)"),
    ]


def cross_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if prop := results.get("propagation"):
        o, u, n = prop["ours"], prop["upstream"], len(prop["ours"]["samples"])
        for q in (50, 95):
            label = LABELS["propagation"].format(q=q, n=n)
            target = (NOT_WORSE, Target(0.100)) if q == 50 else NOT_WORSE
            rows.append(Row(f"propagation_p{q}", label, o[f"p{q}"], "ms", target, base=u[f"p{q}"]))
    for gc in ("off", "on"):
        if fan := results.get(f"fanout_gc_{gc}"):
            o, u = fan["ours"], fan["upstream"]
            label = LABELS["fanout"].format(**o, n=len(o["samples"]), gc=str(gc == "on").lower())
            rows.append(Row(f"fanout_gc_{gc}", label, o["p50"], "ms", NOT_WORSE, base=u["p50"]))
    if unb := results.get("unbound"):
        o, u, ok = unb["ours"], unb["upstream"], unb["ours"]["readers_updated"] == unb["ours"]["bound"]
        label = LABELS["unbound"].format(**o, never=o["sessions"] - o["bound"])
        rows.append(Row("unbound", label, o["reruns"], "", Target(o["bound"], "=="), base=u["reruns"], ok=ok))
    return rows


NOTES = """\
Notes: upstream = streamlit-server-state {upstream_version}; ours = server_state {ours_version} at {revision}.
Streamlit {st_version}, Python {python}, {cpus} CPUs. Ratio = ours / upstream (lower is better for ours).
How each figure is measured: benchmarks/README.md, "How it measures".
"""


def environment() -> dict[str, str]:
    """Versions and the commit measured (``+dirty`` when server_state/ has uncommitted changes)."""
    import streamlit

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        revision = git("rev-parse", "--short", "HEAD") + (
            "+dirty" if git("status", "--porcelain", "server_state") else ""
        )
    except (OSError, subprocess.CalledProcessError):
        revision = "unknown"
    return {
        "revision": revision,
        "upstream_version": version("streamlit-server-state"),
        "ours_version": version("server-state"),
        "st_version": streamlit.__version__,
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
    }


def run(mode: str, groups: set[str]) -> tuple[list[Row], dict[str, Any], list[str]]:
    """The groups of this table that were asked for: rows, raw results, failures."""
    results: dict[str, Any] = {}
    failures: list[str] = []
    if "micro" in groups:
        results["micro"] = attempt(log, "micro", lambda: asyncio.run(run_micro(mode)), failures)
    run_cross(mode, groups, results, failures)
    results = {name: r for name, r in results.items() if r is not None}  # those that ran
    rows = (
        attempt(log, "micro table", lambda: micro_rows(results["micro"]), failures)
        if "micro" in results
        else []
    )
    return (rows or []) + cross_rows(results), results, failures


def report(mode: str, rows: list[Row], env: dict[str, str]) -> str:
    missed = [r.id for r in rows if r.met == "no"]
    parts = [render(rows, HEAD), "", NOTES.format(**env)]
    if mode == "smoke":
        parts.append(
            "Smoke mode: tiny sizes, figures and 'met' are meaningless; only that every benchmark ran."
        )
    return "\n".join([*parts, f"Targets missed: {', '.join(missed) if missed else 'none'}"])
