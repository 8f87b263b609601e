"""Who is here figures (group ``presence``): how long a join takes to show in
another session (memory: one server; Redis: the joiner on one replica, the
watcher on another), and what a join sends to Redis in a room of 1,000.

    python -m benchmarks.presence_bench [--full|--smoke] [--json out.json]

- join -> shown: a watcher session is in the lobby; each joiner connects (a new
  tab) and its first run joins; the figure is from sending the joiner's first
  run request to the end of the watcher's first run that lists the joiner.
  It includes the joiner's websocket handshake and its whole run.
- bytes per join: in this process, a state over the run's redis-server; a
  room filled to 1,000 members, then more joins; Redis' received bytes
  (``INFO stats total_net_input_bytes``, every client) per join, beside the
  size of the room's map encoded whole (what a join would send without the
  map's patches).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ._client import BenchSession, close_all, namespace, redis_server, servers
from ._core import Group, Row, Target, attempt, by_mode

APP = Path(__file__).resolve().parent / "apps" / "presence_app.py"

SIZES = by_mode(  # name=(full, smoke)
    joins=(30, 3),
    warmup=(3, 1),
    members=(1_000, 1_000),  # the room of the bytes figure: 1,000 in smoke mode too (in-process, ~1 s)
    measured_joins=(200, 20),
)


async def _joins(watched: Any, joined: Any, warmup: int, joins: int) -> list[float]:
    watcher = BenchSession(watched, query_string="name=watcher", name="watcher")
    await watcher.connect()
    sessions = [watcher]
    latencies = []
    try:
        for i in range(warmup + joins):
            name = f"user{i:04d}"
            mark = len(watcher.finished_log)
            joiner = BenchSession(joined, query_string=f"name={name}", name=name)
            sessions.append(joiner)
            t0 = time.monotonic()
            await joiner.connect(wait=False)

            def shown(mark: int = mark, name: str = name) -> float | None:
                for finished_at, texts in watcher.finished_log[mark:]:
                    if any(t.startswith("here: ") and f", {name}" in t for t in texts):
                        return finished_at
                return None

            await watcher.wait_until(lambda shown=shown: shown() is not None, what=f"{name} shown")
            at = shown()
            assert at is not None
            if i >= warmup:
                latencies.append(at - t0)
            await joiner.wait_idle()
    finally:
        await close_all(sessions)
    return latencies


def measure_join(mode: str, url: str | None) -> dict[str, Any]:
    z = SIZES[mode]
    out: dict[str, Any] = {}
    env = {"one": {}}
    with servers(APP, env, {}) as made:
        lat = asyncio.run(_joins(made["one"], made["one"], z["warmup"], z["joins"]))
    out["memory"] = {"p50": statistics.median(lat), "n": len(lat)}
    if url is not None:
        ns = namespace("presence")
        replica = {"SERVER_STATE_URL": url, "SERVER_STATE_NAMESPACE": ns}
        env = {
            "one": {**replica, "SERVER_STATE_REPLICA": "one"},
            "two": {**replica, "SERVER_STATE_REPLICA": "two"},
        }
        with servers(APP, env, {}) as made:
            lat = asyncio.run(_joins(made["one"], made["two"], z["warmup"], z["joins"]))
        out["redis"] = {"p50": statistics.median(lat), "n": len(lat)}
    return out


def measure_bytes(mode: str, url: str) -> dict[str, Any]:
    import redis

    from server_state import ServerState
    from server_state._presence import ROOM
    from server_state._store import store_from_url
    from server_state.backends._codec import make_codec

    z = SIZES[mode]
    store = store_from_url(url, namespace=namespace("presence-bytes"))
    state = ServerState(store)
    presence = state._presence
    presence._live = lambda sid: False  # sessions of this benchmark are not followed by the thread
    client = redis.Redis.from_url(url)
    try:
        for i in range(z["members"]):
            presence.join("lobby", f"user {i}", sid=f"{i:08d}-0000-0000-0000-000000000000")
        before = int(client.info("stats")["total_net_input_bytes"])
        for i in range(z["measured_joins"]):
            presence.join("lobby", f"late {i}", sid=f"{i:08d}-1111-0000-0000-000000000000")
        sent = int(client.info("stats")["total_net_input_bytes"]) - before
        room = store.entry(ROOM + "lobby")[0]
        whole = len(make_codec().encode(ROOM + "lobby", room))
        return {
            "members": len(room) - z["measured_joins"],
            "joins": z["measured_joins"],
            "per_join": sent / z["measured_joins"],
            "whole": whole,
        }
    finally:
        client.close()
        presence.close()
        store.close()


def run_all(mode: str) -> tuple[list[Row], dict[str, Any], list[str]]:
    failures: list[str] = []
    results: dict[str, Any] = {}
    rows: list[Row] = []
    try:
        server = redis_server().start()
    except Exception as exc:
        server = None
        failures.append(f"presence: no redis-server: {exc}")
    try:
        url = None if server is None else server.url
        join = attempt(GROUP.log, "presence join", lambda: measure_join(mode, url), failures)
        if join is not None:
            results["join"] = join
            for backend, what in (("memory", "memory, one server"), ("redis", "Redis, another replica")):
                if backend in join:
                    r = join[backend]
                    rows.append(
                        Row(
                            f"join_{backend}",
                            f"join -> another session shows it, p50 ({what})",
                            r["p50"],
                            "s",
                            Target(1.0),
                            note=f"({r['n']} joins)",
                        )
                    )
        if url is not None:
            sent = attempt(GROUP.log, "presence bytes", lambda: measure_bytes(mode, url), failures)
            if sent is not None:
                results["bytes"] = sent
                note = f"(the room's map whole: {sent['whole']:,.0f} bytes; {sent['joins']} joins)"
                rows.append(
                    Row(
                        "join_bytes_redis",
                        f"bytes to Redis per join, room of {sent['members']:,} members",
                        sent["per_join"],
                        "bytes",
                        Target(2_000.0, note="(one entry, not the map)"),
                        note=note,
                    )
                )
    finally:
        if server is not None:
            server.close()
    return rows, results, failures


NOTES = """\
Who is here: {joins} joins after {warmup} untimed, each a new tab; bytes: {measured_joins} joins into a room of
{members:,}. How each figure is measured: benchmarks/presence_bench.py's docstring.
"""

GROUP = Group(
    module="benchmarks.presence_bench",
    title="server_state who is here figures",
    head=("presence", "ours", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode]),
    smoke="Smoke mode: tiny sizes, figures and 'met' are meaningless; only that every figure ran.",
    missed="Presence targets missed",
    run=run_all,
    sizes=SIZES,
)


if __name__ == "__main__":
    sys.exit(GROUP.main())
