"""Soak (group ``soak``): many sessions, then a background writer, on one
``streamlit run`` server of ``apps/soak_app.py``. Rows, method and results:
benchmarks/README.md.

    python -m benchmarks.soak [--full|--smoke] [--json out.json]
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._client import (
    BASE_OPTIONS,
    ERROR_MARKS,
    LOOP_WARNINGS,
    BenchSession,
    StreamlitServer,
    close_all,
    connect_all,
    log_lines,
)
from ._core import MB, Group, Outcome, Row, Target, by_mode, cpu_seconds, fmt, labelled, logger, rss

SOAK_APP = Path(__file__).resolve().parent / "apps" / "soak_app.py"

SETTINGS = by_mode(  # name=(full, smoke)
    sessions=(1_000, 100),
    wave=(50, 25),
    warmup=(50, 25),
    live_sessions=(50, 25),
    rate=(20.0, 20.0),
    duration=(120.0, 10.0),
    rss_deadline=(60.0, 30.0),
)

SESSION_TIMEOUT = 120.0  # seconds, per wait
DRAIN_DEADLINE = 30.0  # seconds for the tracker to let go of closed sessions (liveness: every 1 s)
CONVERGE_DEADLINE = 120.0  # seconds after the writer's end for every session to show its last value
RSS_TOLERANCE = 0.10
POLL = 0.25  # seconds between two looks of the probe while polling a condition
SAMPLE = 0.05  # seconds between two RSS samples of the peak sampler


log = logger("soak")


# -- the server's memory -------------------------------------------------------------


@contextlib.contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Samples process ``pid``'s RSS in a thread while inside; yields ``[the highest so far]``."""
    peak, stop = [rss(pid)], threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE):
            try:
                peak[0] = max(peak[0], rss(pid))
            except (OSError, LookupError):
                return

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(5)
        peak[0] = max(peak[0], rss(pid))


# -- sessions ------------------------------------------------------------------------


def session(server: StreamlitServer, query: str, name: str) -> BenchSession:
    return BenchSession(server, query_string=query, timeout=SESSION_TIMEOUT, name=name)


_FIELD = re.compile(r"(\w+)=(-?[\d.]+|\S+)")


def fields(s: BenchSession, first: str) -> dict[str, str]:
    """``name=value`` pairs of the page's text that starts with ``first=``."""
    for text in s.texts():
        if text.startswith(first + "="):
            return dict(_FIELD.findall(text))
    raise LookupError(f"no {first}= on the page:\n{s.describe()}")


async def look(probe: BenchSession) -> dict[str, int]:
    """Rerun the probe; its counters as ints (``parked`` included, -1 if unknown)."""
    await probe.rerun()
    out = {k: int(v) for k, v in fields(probe, "sessions").items()}
    out["parked"] = int(fields(probe, "parked")["parked"])
    return out


async def drained(probe: BenchSession, deadline: float) -> tuple[dict[str, int], float]:
    """Poll the probe until the tracker holds only the probe and nobody is
    bound to ``shared``, or until ``deadline`` seconds; return the last look
    and the seconds it took."""
    t0 = time.monotonic()
    while True:
        seen = await look(probe)
        elapsed = time.monotonic() - t0
        if (seen["sessions"] == 1 and seen["bound_shared"] == 0) or elapsed >= deadline:
            return seen, elapsed
        await asyncio.sleep(POLL)


async def wave(server: StreamlitServer, n: int, tag: str) -> None:
    """``n`` sessions connect, read ``shared`` (their first run shows it) and disconnect."""
    sessions = [session(server, "role=reader&key=shared", f"{tag}-{i}") for i in range(n)]
    await connect_all(sessions, SESSION_TIMEOUT * 2)
    try:
        wrong = [s.name for s in sessions if "value=hello" not in s.texts()]
        if wrong:
            raise AssertionError(f"sessions not showing value=hello: {wrong[:5]}\n{sessions[0].describe()}")
    finally:
        await close_all(sessions)


# -- the two phases ------------------------------------------------------------------


async def phase_connect(server: StreamlitServer, probe: BenchSession, cfg: dict[str, Any]) -> dict[str, Any]:
    assert server.pid is not None
    pid, size = server.pid, cfg["wave"]
    for i in range(0, cfg["warmup"], size):
        await wave(server, min(size, cfg["warmup"] - i), f"warm{i // size}")
    warm, _ = await drained(probe, DRAIN_DEADLINE)
    before = rss(pid)
    log(f"warm-up done: {warm}, RSS {before / MB:.1f} MB")

    n = cfg["sessions"]
    started = time.monotonic()
    with peak_rss(pid) as peak:
        for i in range(0, n, size):
            await wave(server, min(size, n - i), f"w{i // size}")
            if (i // size) % 5 == 4:
                log(f"{i + size} sessions connected, read, disconnected; RSS {rss(pid) / MB:.1f} MB")
    waves_s = time.monotonic() - started
    seen, drain_s = await drained(probe, DRAIN_DEADLINE)
    log(f"after {n} sessions: {seen} ({drain_s:.1f} s)")

    # RSS: poll (every probe run ends with Streamlit's gc.collect) until back
    # within the tolerance, or the deadline.
    t0 = time.monotonic()
    after = rss(pid)
    lowest = after
    while after > before * (1 + RSS_TOLERANCE) and time.monotonic() - t0 < cfg["rss_deadline"]:
        await asyncio.sleep(POLL)
        await look(probe)
        after = rss(pid)
        lowest = min(lowest, after)
    rss_s = time.monotonic() - t0
    final = await look(probe)
    return {
        "sessions": n,
        "wave": size,
        "warmup": cfg["warmup"],
        "waves_s": waves_s,
        "dead": seen["sessions"] - 1,  # the probe itself is the one live session
        "bound": seen["bound_shared"],
        "drain_s": drain_s,
        "version_shared_before": warm["version_shared"],
        "version_shared": final["version_shared"],
        "parked": final["parked"],
        "rss_before": before,
        "rss_peak": max(peak[0], after),
        "rss_after": after,
        "rss_lowest": lowest,
        "rss_after_s": rss_s,
        "rss_ratio": after / before,
    }


async def phase_writer(server: StreamlitServer, probe: BenchSession, cfg: dict[str, Any]) -> dict[str, Any]:
    assert server.pid is not None
    rate, duration = cfg["rate"], cfg["duration"]
    control = session(server, f"role=control&rate={rate}&duration={duration}", "control")
    readers = [session(server, "role=reader&key=live", f"live-{i}") for i in range(cfg["live_sessions"])]
    await connect_all([control], SESSION_TIMEOUT * 2)
    try:
        await connect_all(readers, SESSION_TIMEOUT * 2)
        try:
            await asyncio.gather(*(s.wait_quiet(0.5, timeout=SESSION_TIMEOUT) for s in [control, *readers]))
            before = {k: int(v) for k, v in fields(control, "reruns").items()}
            marks = [len(r.finished_log) for r in readers]
            runs0 = [r.runs_started for r in readers]
            cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
            await control.click("Start writer")
            log(f"writer started: {rate:g} writes/s for {duration:g} s, {len(readers)} sessions")
            await control.wait_until(
                lambda: control.text_containing("writer=done") is not None,
                duration * 3 + SESSION_TIMEOUT,
                what="the writer's end",
            )
            cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - wall0)
            done = fields(control, "writer")
            last, last_at = int(done["last"]), float(done["last_at"])
            expected = f"value={last}"

            async def converge(r: BenchSession, mark: int) -> None:
                await r.wait_until(
                    lambda: r.first_finish_showing(expected, mark) is not None,
                    CONVERGE_DEADLINE,
                    what=f"a run showing {expected}",
                )

            outcome = await asyncio.gather(
                *(converge(r, m) for r, m in zip(readers, marks, strict=True)), return_exceptions=True
            )
            converged = sum(1 for o in outcome if not isinstance(o, BaseException))
            finishes = [r.first_finish_showing(expected, m) for r, m in zip(readers, marks, strict=True)]
            convergence_s = max(f for f in finishes if f is not None) - last_at if converged else None
            await asyncio.gather(*(s.wait_quiet(1.0, timeout=SESSION_TIMEOUT) for s in [control, *readers]))
            still = sum(1 for r in readers if expected in r.texts())  # no later run showed another value
            await control.rerun()
            after = {k: int(v) for k, v in fields(control, "reruns").items()}
            page_errors = sum(len(s.exceptions()) for s in [control, *readers])
            client_runs = sum(r.runs_started - n for r, n in zip(readers, runs0, strict=True))
            timeouts = [repr(o)[:300] for o in outcome if isinstance(o, BaseException)]
        finally:
            await close_all(readers)
    finally:
        await close_all([control])
    return {
        "sessions": len(readers),
        "rate": rate,
        "duration": duration,
        "writes": int(done["writes"]),
        "last": last,
        "writer_errors": int(done["errors"]),
        "writer_span_s": last_at - float(done["first_at"]),
        "converged": converged,
        "still_showing_last": still,
        "convergence_s": convergence_s,
        "not_converged": timeouts,
        "reruns_requested": after["reruns"] - before["reruns"],
        "loops_stopped": after["loops"] - before["loops"],
        "client_runs": client_runs,
        "page_errors": page_errors,
        "server_cpu": cpu,  # CPU seconds per second while the writer ran (2 = both cores)
    }


def log_findings(text: str) -> dict[str, Any]:
    errors, loops = log_lines(text, ERROR_MARKS), log_lines(text, LOOP_WARNINGS)
    return {"error_lines": errors[:20], "errors": len(errors), "loop_lines": loops[:20], "loops": len(loops)}


PHASES = {"connect": phase_connect, "writer": phase_writer}


def run_all(mode: str) -> Outcome:
    """Both phases on one server, as the items of the group (``Group.run_items``), then the
    server log's findings: rows, raw results, failures."""
    failures: list[str] = []
    results: dict[str, Any] = {"mode": mode}
    rows: list[Row] = []
    server = StreamlitServer(SOAK_APP, options=BASE_OPTIONS, cwd=SOAK_APP.parent, keep_log=False)
    loop = asyncio.new_event_loop()
    try:
        server.start()
        probe = session(server, "role=probe", "probe")
        loop.run_until_complete(probe.connect())
        try:

            def phase(name: str) -> Any:
                return loop.run_until_complete(PHASES[name](server, probe, SETTINGS[mode]))

            rows, phases, failures = GROUP.run_items(mode, list(PHASES), phase)
            results.update(phases)
        finally:
            loop.run_until_complete(probe.close())
        results["log"] = log_findings(server.log_text())
        if results["log"]["errors"] or results["log"]["loops"]:
            server.keep_log = True
            results["log"]["path"] = str(server.log_path)
        rows += rows_for("log", {**results["log"], "writer": results.get("writer")})
    except Exception:
        failures.append(f"soak:\n{traceback.format_exc()}")
    finally:
        if failures:
            failures.append(f"soak: the server log's tail\n{server.log_tail(40)}")
        server.stop()
        loop.close()
    return rows, results, failures


# -- the table -----------------------------------------------------------------------


LABELS = {  # by row id, formatted with the phase's figures
    "soak_dead_sessions": "{sessions:,} sessions connect, read, disconnect (waves of {wave}): "
    "stats()['sessions'] left, probe excepted",
    "soak_bound_sessions": "the same: bound_sessions('shared') left; 'shared' written again",
    "soak_rss": "server RSS after the {sessions:,} / after a warm-up of {warmup} (before / peak / after)",
    "soak_parked": "disconnected sessions kept for a reconnect (tracker, private; info)",
    "soak_converged": "{sessions} sessions, a background writer at {rate:g}/s for {duration:g} s: "
    "sessions not showing the last value",
    "soak_writes": "the same: writes made; reruns requested (stats); runs the sessions saw; server CPU (info)",
    "soak_errors": "tracebacks in the server log (whole soak); writer and page errors",
    "soak_loop": "rerun loops reported ('stopped rerunning' in the log; stats()['loops_stopped'])",
}


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    """The rows of a phase (or of the server log: ``log``), from its results (tests/test_soak.py
    lists every row id)."""
    none = Target(0, "==")
    row = labelled(LABELS, **r)
    if item == "connect":
        written = r["version_shared"] != r["version_shared_before"]
        rss_mb = " / ".join(fmt(r[k], "B") for k in ("rss_before", "rss_peak", "rss_after"))
        known = r["parked"] >= 0
        dead = f"(after {r['drain_s']:.1f} s; waves took {r['waves_s']:.0f} s)"
        rss_note = f"({rss_mb}, after {r['rss_after_s']:.1f} s)"
        return [
            row("soak_dead_sessions", r["dead"], "", Target(0, "==", note="dead sessions"), dead),
            row("soak_bound_sessions", r["bound"], "", none, "; yes!" if written else "; no", ok=not written),
            row("soak_rss", r["rss_ratio"], "x", Target(1 + RSS_TOLERANCE), rss_note),
            row("soak_parked", r["parked"] if known else None, "", None, "" if known else "unknown"),
        ]
    w = r if item == "writer" else r.get("writer")
    if item == "writer":
        conv = "-" if w["convergence_s"] is None else fmt(w["convergence_s"], "ms")
        seen = f"({w['converged']}/{w['sessions']} converged, still {w['still_showing_last']}, in {conv})"
        made = f"in {w['writer_span_s']:.1f} s; {w['reruns_requested']:,}; {w['client_runs']:,}; "
        stale = w["sessions"] - min(w["converged"], w["still_showing_last"])
        return [
            row("soak_converged", stale, "", none, seen),
            row("soak_writes", w["writes"], "", None, made + f"{w['server_cpu']:.2f} cores"),
        ]
    errors = w["writer_errors"] + w["page_errors"] if w is not None else 0
    loops = w["loops_stopped"] if w is not None else 0
    return [
        row("soak_errors", r["errors"], "", none, f"; {errors}", ok=errors == 0),
        row("soak_loop", r["loops"], "", none, f"; {loops}", ok=loops == 0),
    ]


NOTES = """\
Soak notes: the probe polled every {poll} s (≤ {drain:.0f} s), the peak RSS sampled every {sample:.0f} ms, the RSS
back within {tol:.0%} in ≤ {rss:.0f} s. How each figure is measured: benchmarks/README.md, "The soak".
"""


GROUP = Group(
    module="benchmarks.soak",
    title="server_state soak",
    head=("soak", "ours", "target", "met"),
    notes=lambda mode: NOTES.format(
        poll=POLL,
        drain=DRAIN_DEADLINE,
        sample=SAMPLE * 1000,
        tol=RSS_TOLERANCE,
        rss=SETTINGS[mode]["rss_deadline"],
    ),
    smoke="Smoke mode: fewer sessions and a shorter writer; the targets hold all the same.",
    missed="Soak targets missed",
    run=run_all,
    rows_for=rows_for,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
