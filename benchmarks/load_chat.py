"""Redis at scale (group ``load``): replicas of ``apps/load_chat_app.py`` on one
redis-server, sessions posting to one chat; what it checks and prints, and the
results: benchmarks/README.md.

    python -m benchmarks.load_chat [--full|--smoke] [--json out.json]
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sys
import time
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from ._client import (
    BASE_OPTIONS,
    ERROR_MARKS,
    LOOP_WARNINGS,
    BenchSession,
    StreamlitServer,
    log_lines,
    redis_server,
    redis_state,
    start_all,
)
from ._core import Group, Row, Target, cpu_seconds, labelled, logger, render

APP = Path(__file__).resolve().parent / "apps" / "load_chat_app.py"

SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"replicas": 3, "sessions": 30, "rate": 20.0, "duration": 60.0},
    "smoke": {"replicas": 3, "sessions": 3, "rate": 10.0, "duration": 10.0},
}
SESSION_TIMEOUT = 120.0
CONVERGE_DEADLINE = 60.0  # seconds after the last post for every session to show the whole history
NAMESPACE = "load-chat"

_PAGE = re.compile(r"count=(\d+) digest=(\w+) last=(\S+)")
_POSTED = re.compile(r"posted=(\d+)")
_WRITTEN = re.compile(r"^load-chat (posting|committed) (\S+)$", re.MULTILINE)


log = logger("load_chat")


def page(s: BenchSession) -> tuple[int, str, str, int]:
    """``(count, digest, last id, posted)`` as the session's page shows them."""
    shown = posted = None
    for text in s.texts():
        shown = shown or _PAGE.search(text)
        posted = posted or _POSTED.search(text)
    if shown is None or posted is None:
        raise LookupError(f"no count=/posted= on the page:\n{s.describe()}")
    return int(shown[1]), shown[2], shown[3], int(posted[1])


def _safe_page(s: BenchSession) -> tuple[int, str, str, int] | tuple[()]:
    try:
        return page(s)
    except LookupError:
        return ()


def digest_of(ids: list[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode(), usedforsecurity=False).hexdigest()[:16]


async def run_load(cfg: dict[str, Any], redis_url: str) -> dict[str, Any]:
    """The load run on the Redis at ``redis_url``: figures and findings (see
    benchmarks/README.md); raises when a session or a server fails."""
    import redis

    namespace = f"{NAMESPACE}-{uuid.uuid4().hex[:8]}"
    env = {"SERVER_STATE_URL": redis_url, "SERVER_STATE_NAMESPACE": namespace}
    servers = [
        StreamlitServer(APP, options=BASE_OPTIONS, env=env, cwd=APP.parent, keep_log=False)
        for _ in range(cfg["replicas"])
    ]
    client = redis.Redis.from_url(redis_url)
    sessions: list[BenchSession] = []
    try:
        start_all(servers)
        sessions += [  # interleaved: the round robin alternates replicas
            BenchSession(server, query_string=f"tag=r{r}s{s}", timeout=SESSION_TIMEOUT, name=f"r{r}s{s}")
            for s in range(cfg["sessions"])
            for r, server in enumerate(servers)
        ]
        await asyncio.gather(*(s.connect() for s in sessions))
        log(f"{len(servers)} replicas x {cfg['sessions']} sessions connected")
        stats0 = client.info("stats")
        cpu0 = [cpu_seconds(server.pid or 0) for server in servers]
        wall0 = time.monotonic()
        total = round(cfg["rate"] * cfg["duration"])
        pace = asyncio.Event()  # never set: its wait paces the clicks
        clicks: list[asyncio.Task[Any]] = []
        for i in range(total):
            delay = wall0 + i / cfg["rate"] - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pace.wait(), delay)
            clicks.append(asyncio.create_task(sessions[i % len(sessions)].click("Post")))
        await asyncio.gather(*clicks)
        wall = time.monotonic() - wall0
        cpu = [(cpu_seconds(server.pid or 0) - c) / wall for server, c in zip(servers, cpu0, strict=True)]
        log(f"{total} posts clicked in {wall:.1f} s")

        # Every session settles on the whole history, the one Redis has (a
        # replica of this process follows it): polled across sessions, with a deadline.
        follower, store = redis_state(redis_url, namespace)
        t0 = time.monotonic()
        converged = False
        try:
            while time.monotonic() - t0 < CONVERGE_DEADLINE:
                chat = follower.peek("chat") or []
                want = (len(chat), digest_of([m["id"] for m in chat]))
                pages = [_safe_page(s) for s in sessions]
                if not any(s.run_in_progress for s in sessions) and all(p and p[:2] == want for p in pages):
                    converged = True
                    break
                await asyncio.sleep(0.05)  # polling the pages above, with a deadline
        finally:
            store.close()
        if not converged:
            log(
                "not every session showed the whole history: "
                + ", ".join(f"{s.name}={_safe_page(s)}" for s in sessions)
            )
        converge_s = time.monotonic() - t0
        await asyncio.gather(*(s.wait_quiet(0.5, timeout=SESSION_TIMEOUT) for s in sessions))
        stats1 = client.info("stats")
        shown = [page(s) for s in sessions]
        posted = sum(p[3] for p in shown)
        views = {(count, digest) for count, digest, _, _ in shown}

        # What a replica started now reads: the whole history, each session's posts once, in order.
        late, store = redis_state(redis_url, namespace)
        try:
            history = list(late.get("chat") or [])
        finally:
            store.close()
        ids = [m["id"] for m in history]
        logs = [server.log_text() for server in servers]
        written = _written(logs)
        in_chat = Counter(ids)
        # A commit the app saw return that is not in the history: a lost update.
        lost = sorted(i for i, n in written["committed"].items() if in_chat[i] < n)
        # An id more often in the history than the app asked for it: applied twice.
        doubled = sorted(i for i, n in in_chat.items() if n > written["posting"][i])
        # An id the app posted twice (two clicks, the first one's callback
        # stopped by the second before it recorded its number): information.
        reposted = sorted(i for i, n in written["posting"].items() if n > 1)
        in_order = all(
            [m["id"] for m in history if m["from"] == s.name] == [f"{s.name}-{k}" for k in range(1, p[3] + 1)]
            for s, p in zip(sessions, shown, strict=True)
        )
        memory = client.info("memory")
        chat_key = "{ss:" + namespace + "}:l:chat"
        messages = max(len(history), 1)
        per_message = {
            d: (int(stats1[f"total_net_{d}_bytes"]) - int(stats0[f"total_net_{d}_bytes"])) / messages
            for d in ("input", "output")
        }
        return {
            "replicas": len(servers),
            "sessions": len(sessions),
            "rate": cfg["rate"],
            "duration": cfg["duration"],
            "clicks": total,
            "posted": posted,
            "count": len(history),
            "views": len(views),
            "same_history": views == {(len(history), digest_of(ids))},
            "unique": len(set(ids)) == len(ids),
            "lost": lost[:10],
            "doubled": doubled[:10],
            "reposted": reposted[:10],
            "converged": converged,
            "page_errors": [e for s in sessions for e in s.exceptions()][:10],
            "per_session": {s.name: list(p) for s, p in zip(sessions, shown, strict=True)},
            "in_order": in_order,
            "converge_s": converge_s,
            "cpu_per_replica": cpu,
            "redis_used_memory": int(memory["used_memory"]),
            "redis_chat_bytes": int(client.memory_usage(chat_key) or 0),
            "bytes_in_per_message": per_message["input"],
            "bytes_out_per_message": per_message["output"],
            "log_errors": [line for text in logs for line in log_lines(text, ERROR_MARKS)][:10],
            "loop_warnings": [line for text in logs for line in log_lines(text, LOOP_WARNINGS)][:10],
        }
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        for server in servers:
            server.stop()
        client.close()


def _written(logs: list[str]) -> dict[str, Counter[str]]:
    """What the app's posts printed in the server logs: ids before the
    update (``posting``) and after it returned (``committed``)."""
    out: dict[str, Counter[str]] = {"posting": Counter(), "committed": Counter()}
    for text in logs:
        for what, mid in _WRITTEN.findall(text):
            out[what][mid] += 1
    return out


def ok(r: dict[str, Any]) -> bool:
    failed = ("lost", "doubled", "log_errors", "page_errors", "loop_warnings")
    return bool(r["converged"] and r["same_history"] and r["count"] > 0.9 * r["clicks"]) and not any(
        r[k] for k in failed
    )


LABELS = {  # by row id, formatted with the figures
    "load_history": "{replicas} replicas x {per_replica} sessions, {rate:g} messages/s for {duration:g} s: "
    "views of the history that differ from a new replica's",
    "load_lost_doubled": "commits lost + applied twice (the app's own log of each post)",
    "load_converged": "every session shows the whole history, after the last click",
    "load_cpu": "CPU per replica while writing (of one core)",
    "load_redis_memory": "Redis used_memory; the chat's list per message",
    "load_bytes": "bytes per message received / sent by Redis",
    "load_logs": "server logs: error lines + page errors, rerun-loop warnings",
}


def rows_for(mode: str, r: dict[str, Any]) -> list[Row]:
    """The load test as a table (group ``load``)."""
    row = labelled(LABELS, **r, per_replica=r["sessions"] // r["replicas"])
    cpu = ", ".join(f"{c * 100:.0f}%" for c in r["cpu_per_replica"])
    same = "the same everywhere" if r["same_history"] else "NOT the same everywhere"
    lost, doubled, none = len(r["lost"]), len(r["doubled"]), Target(0, "==")
    messages = f"({r['count']} messages from {r['clicks']} clicks, {same})"
    twice = f"({lost} / {doubled}; ids posted by two clicks: {len(r['reposted'])})"
    bytes_ = f"{r['bytes_in_per_message']:,.0f} / {r['bytes_out_per_message']:,.0f} B"
    chat = f"; {r['redis_chat_bytes'] / max(r['count'], 1):.0f} B"
    converged, reached = (r["converge_s"], "") if r["converged"] else (None, "NOT reached")
    views, errors = 0 if r["same_history"] else r["views"], len(r["log_errors"]) + len(r["page_errors"])
    return [
        row("load_history", views, "", none, messages, ok=r["count"] > 0.9 * r["clicks"]),
        row("load_lost_doubled", lost + doubled, "", none, twice),
        row("load_converged", converged, "s", Target(CONVERGE_DEADLINE), reached),
        row("load_cpu", None, note=cpu),
        row("load_redis_memory", r["redis_used_memory"], "B", None, chat),
        row("load_bytes", None, note=bytes_),
        row("load_logs", errors, "", none, f", {len(r['loop_warnings'])}", ok=not r["loop_warnings"]),
    ]


def report(mode: str, r: dict[str, Any]) -> str:
    return render(rows_for(mode, r), GROUP.head)


def run_all(mode: str) -> tuple[list[Row], dict[str, Any], list[str]]:
    """The rows, the raw figures, the failures."""
    try:
        with redis_server() as server:
            result = asyncio.run(run_load(SETTINGS[mode], server.url))
    except Exception:
        return [], {}, [f"load:\n{traceback.format_exc()}"]
    return (
        rows_for(mode, result),
        result,
        [] if ok(result) else ["load: the load test failed (see its table)"],
    )


NOTES = 'Load notes: how each figure is measured: benchmarks/README.md, "The Redis load test".'

GROUP = Group(
    module="benchmarks.load_chat",
    title="server_state Redis load test",
    head=("redis load test", "ours", "target", "met"),
    notes=lambda mode: NOTES,
    smoke="Smoke mode: 3 x 3 sessions for 10 s; its outcome is checked, its figures mean little.",
    missed="Load targets missed",
    run=run_all,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
