"""Tabs that outlive their server (group ``failover``): how long a tab takes to
show the current state after its replica stops (one tab in Chromium, behind
nginx), and what 100 tabs landing on the survivor at once cost it. Method:
benchmarks/README.md.

    python -m benchmarks.failover [--full|--smoke] [--json out.json]
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import time
import traceback
import uuid
from typing import Any

from ._client import TESTS, BenchSession, StreamlitServer, redis_server, start_all
from ._core import Group, Outcome, Row, Target, labelled

APP = TESTS / "apps" / "failover_app.py"
SETTINGS: dict[str, dict[str, int]] = {"full": {"reps": 10, "tabs": 100}, "smoke": {"reps": 1, "tabs": 20}}
TARGET_SHOWN = 3.0  # seconds from the websocket back to the current count shown
COUNT_RE = re.compile(r"Count =\s+`(-?\d+)`")


def _env(url: str, replica: str, namespace: str, **extra: str) -> dict[str, str]:
    return {
        "SERVER_STATE_URL": url,
        "SERVER_STATE_NAMESPACE": namespace,
        "FAILOVER_REPLICA": replica,
        **extra,
    }


# -- one tab in Chromium -----------------------------------------------------------


def _opened(sockets: list[float], url: str) -> None:
    if "/_stcore/stream" in url:
        sockets.append(time.monotonic())


def browser_failover(redis_url: str, reps: int) -> dict[str, Any]:
    from harness.browser import sync_chromium, wait_for_app_idle
    from nginx_support import Nginx
    from playwright.sync_api import Page, expect

    def count(page: Page) -> Any:
        return page.get_by_test_id("stMarkdownContainer").filter(has_text="Count =").locator("code")

    def click(page: Page) -> None:
        page.get_by_test_id("stButton").get_by_role("button", name="Increment", exact=True).click()

    ws_back: list[float] = []
    shown: list[float] = []
    expect.set_options(timeout=30_000)
    with sync_chromium() as browser:
        for _ in range(reps):
            namespace = f"bench-failover-{uuid.uuid4().hex[:8]}"
            replicas = {n: StreamlitServer(APP, env=_env(redis_url, n, namespace)) for n in ("r1", "r2")}
            start_all(list(replicas.values()))
            try:
                with Nginx([s.port for s in replicas.values()]) as lb:
                    sockets: list[float] = []
                    a = browser.new_context().new_page()
                    a.on("websocket", lambda ws, sockets=sockets: _opened(sockets, ws.url))
                    a.goto(lb.url)
                    wait_for_app_idle(a)
                    expect(count(a)).to_have_text("0")
                    text = a.get_by_test_id("stMarkdownContainer").filter(has_text="replica=").inner_text()
                    doomed = text.split()[0].removeprefix("replica=")
                    (survivor,) = set(replicas) - {doomed}
                    b = browser.new_context().new_page()
                    b.goto(replicas[survivor].url)
                    wait_for_app_idle(b)
                    expect(count(b)).to_have_text("0")
                    stopped = time.monotonic()
                    replicas[doomed].stop()
                    click(b)
                    expect(count(b)).to_have_text("1")
                    expect(count(a)).to_have_text("1")
                    done = time.monotonic()
                    ws_back.append(sockets[-1] - stopped)
                    shown.append(done - sockets[-1])
                    a.context.close()
                    b.context.close()
            finally:
                for server in replicas.values():
                    server.stop()
    return {"ws_back": ws_back, "shown": shown}


# -- 100 tabs -----------------------------------------------------------------------


def _count(session: BenchSession) -> int | None:
    text = session.text_containing("Count =")
    match = COUNT_RE.search(text) if text is not None else None
    return int(match.group(1)) if match is not None else None


async def many_tabs(redis_url: str, n: int, rate: str | None) -> dict[str, Any]:
    namespace = f"bench-failover-{uuid.uuid4().hex[:8]}"
    extra = {} if rate is None else {"SERVER_STATE_RECONNECT_RATE": rate}
    names = ("doomed", "survivor")
    made = [StreamlitServer(APP, env=_env(redis_url, name, namespace, **extra)) for name in names]
    doomed, survivor = start_all(made)
    left: list[BenchSession] = []
    back: list[BenchSession] = []
    try:
        for batch in range(0, n, 25):
            left += await asyncio.gather(
                *(BenchSession(doomed, name=f"tab {i}").connect() for i in range(batch, min(n, batch + 25)))
            )
        await asyncio.gather(*(t.close() for t in left))
        await asyncio.to_thread(doomed.stop)
        start = time.monotonic()
        back = [BenchSession(survivor, resume_session_id=t.session_id, timeout=60) for t in left]
        await asyncio.gather(*(t.connect(rerun=False, wait=False) for t in back))
        await asyncio.gather(*(t.wait_until(lambda t=t: _count(t) == 0, what="the count") for t in back))
        all_shown = time.monotonic() - start
        await asyncio.gather(*(t.wait_quiet(1.0, timeout=60) for t in back))
        starts = sorted(r.started_at for t in back for r in t.runs)
        peak = max(sum(1 for s in starts if first <= s < first + 0.1) for first in starts)
        return {"all_shown": all_shown, "runs": len(starts), "peak_100ms": peak, "tabs": n}
    finally:
        await asyncio.gather(*(t.close() for t in left + back))
        doomed.stop()
        survivor.stop()


# -- the table ----------------------------------------------------------------------


LABELS = {  # by row id, formatted with the figures
    "failover_ws": "replica stopped -> tab A's websocket back through nginx (Chromium), p50 of {reps}",
    "failover_shown": "tab A's websocket back -> A shows the current count by itself, p50 of {reps}",
    "failover_many": "{n} tabs of a stopped replica back on the survivor -> all show the current count",
    "failover_many_runs": "runs of those {n} tabs on the survivor",
    "failover_burst": "the same without spreading (RECONNECT_RATE 100,000) (info)",
}


def rows_for(r: dict[str, Any]) -> list[Row]:
    b, spread, burst = r["browser"], r["spread"], r["burst"]
    n = spread["tabs"]
    row = labelled(LABELS, n=n, reps=len(b["shown"]))

    def p50(key: str) -> tuple[float, str]:
        return statistics.median(b[key]), f"(max {max(b[key]):.2f} s)"

    def many(x: dict[str, Any]) -> str:
        return f"; at most {x['peak_100ms']} runs started in 100 ms"

    (ws, ws_max), (shown, shown_max) = p50("ws_back"), p50("shown")
    return [
        row("failover_ws", ws, "s", None, ws_max),
        row("failover_shown", shown, "s", Target(TARGET_SHOWN), shown_max),
        row("failover_many", spread["all_shown"], "s", None, many(spread)),
        row("failover_many_runs", spread["runs"], "", Target(n, "=="), ok=burst["runs"] == n),
        row("failover_burst", burst["all_shown"], "s", None, many(burst)),
    ]


def run_all(mode: str) -> Outcome:
    cfg = SETTINGS[mode]
    failures: list[str] = []
    results: dict[str, Any] = {}
    try:
        with redis_server() as redis:
            results["browser"] = browser_failover(redis.url, cfg["reps"])
            results["spread"] = asyncio.run(many_tabs(redis.url, cfg["tabs"], None))
            results["burst"] = asyncio.run(many_tabs(redis.url, cfg["tabs"], "100000"))
        rows = rows_for(results)
    except Exception:
        failures.append(f"failover:\n{traceback.format_exc()}")
        rows = []
    return rows, results, failures


NOTES = (
    "Two replicas on one redis-server (127.0.0.1), nginx round-robin in front; Chromium is Debian's. "
    "A returning tab runs 0.25 s after its websocket is back unless it asked for a run itself "
    "(SERVER_STATE_RECONNECT_GRACE), at most 50 a second per server (SERVER_STATE_RECONNECT_RATE)."
)

GROUP = Group(
    module="benchmarks.failover",
    title="server_state failover figures",
    head=("failover", "ours", "target", "met"),
    notes=lambda mode: NOTES,
    smoke="Smoke mode: one repetition and 20 tabs; figures only prove that every row ran.",
    missed="Failover targets missed",
    run=run_all,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
