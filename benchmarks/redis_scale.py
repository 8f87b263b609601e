"""How far one Redis carries an app (group ``redis_scale``), on a redis-server of
the run's own: N replica processes with M writer threads each, ``update()`` of
their own counters at a rising aggregate rate until the p99 commit latency
passes 20 ms (``load``); one writer at a fixed rate with F replica processes
following the stream (``fanout``). Rows, method and results: benchmarks/README.md.

    python -m benchmarks.redis_scale [--full|--smoke] [--json out.json] [--only load,fanout]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from ._core import ROOT, Group, Row, by_mode, cpu_seconds, labelled, logger, pct

SIZES = by_mode(  # name=(full, smoke)
    replicas=((1, 2, 4, 8), (1, 2)),
    threads=(2, 2),
    start_rate=(200.0, 100.0),
    step_s=(3.0, 0.4),
    warmup_s=(1.0, 0.2),
    max_steps=(16, 2),
    fanout_followers=(8, 2),
    fanout_rate=(500.0, 500.0),
    fanout_s=(10.0, 1.0),
    fanout_base_s=(2.0, 0.3),
)

GROWTH = 1.5  # each step's target rate over the last one's
P99_LIMIT = 0.020  # seconds: the ramp stops when a step's p99 passes it
FLAT = 1.05  # the ramp stops when a step achieves less than this times the best so far
LEAD_NS = 100_000_000  # a step starts this long after the parent sends it: every replica ready
CATCH_UP_S = 10.0  # how long a follower may take to see the last commit after the writer stops

log = logger("redis_scale")


def _state(url: str, ns: str) -> tuple[Any, Any]:
    """A ``ServerState`` on a new store over Redis, and that store (the replicas
    import neither Streamlit nor the harness: they start in well under a second)."""
    from server_state import ServerState
    from server_state._store import store_from_url

    store = store_from_url(url, namespace=ns)
    return ServerState(store), store


def _namespace(item: str) -> str:
    return f"bench-{item}-{os.urandom(4).hex()}"


def _send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _reply(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The replica's next line, a JSON object; a replica that died raises."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"replica {proc.pid} exited ({proc.wait()}) without answering")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _sleep_until(t_ns: int) -> None:
    delay = t_ns - time.monotonic_ns()
    if delay > 0:
        time.sleep(delay / 1e9)


# -- the replica processes (``--load-replica``, ``--follower``) ------------------------


def _paced(first_ns: int, period_ns: int, end_ns: int, fn: Any) -> int:
    """``fn()`` at ``first_ns``, then every ``period_ns`` until ``end_ns``: sleep
    until the next slot; a call that starts more than a period late skips the
    slots it missed (no burst to catch up). Returns the slots skipped."""
    slot, skipped = first_ns, 0
    while slot < end_ns:
        now = time.monotonic_ns()
        if now < slot:
            time.sleep((slot - now) / 1e9)
        else:
            behind = (now - slot) // period_ns
            slot += behind * period_ns
            skipped += behind
            if slot >= end_ns:
                break
        fn()
        slot += period_ns
    return skipped


def load_replica_main(url: str, ns: str, index: int, replicas: int, threads: int) -> int:
    """One replica of ``load``: ``threads`` writer threads, each ``update()``-ing a
    counter of its own. Per ``step RATE SECONDS START_NS`` line on stdin, each
    thread writes on its schedule (its share of RATE, commits/s for all replicas,
    interleaved with every other thread's) and the replica answers with the
    commits made, each ``update()`` call's time (µs) and the slots skipped;
    ``stop`` answers with the updates that returned per key, and exits."""
    state, store = _state(url, ns)
    keys = [f"c{index}_{t}" for t in range(threads)]
    counts = dict.fromkeys(keys, 0)
    for key in keys:
        state[key] = 0  # also starts the replica: mirror loaded, follower running
    errors: list[str] = []

    def inc(v: int) -> int:
        return v + 1

    def writer(t: int, rate: float, seconds: float, start_ns: int, out: dict[str, Any]) -> None:
        key = keys[t]
        writers = replicas * threads
        gap_ns = 1e9 / rate  # between two commits of all replicas together
        lat: list[int] = []

        def one() -> None:
            t0 = time.perf_counter_ns()
            try:
                state.update(key, inc)
            except Exception as exc:  # counted, never retried: the check below sees it
                errors.append(repr(exc))
                return
            lat.append((time.perf_counter_ns() - t0) // 1000)
            counts[key] += 1

        first = start_ns + int((index * threads + t) * gap_ns)
        skipped = _paced(first, int(writers * gap_ns), start_ns + int(seconds * 1e9), one)
        out[key] = (lat, skipped)

    print(json.dumps({"ready": index}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "stop":
            print(json.dumps({"counts": counts, "errors": errors[:5], "n_errors": len(errors)}), flush=True)
            break
        rate, seconds, start_ns = float(cmd[1]), float(cmd[2]), int(cmd[3])
        out: dict[str, Any] = {}
        workers = [
            threading.Thread(target=writer, args=(t, rate, seconds, start_ns, out)) for t in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        lat = [x for key in keys for x in out[key][0]]
        skipped = sum(out[key][1] for key in keys)
        print(json.dumps({"commits": len(lat), "lat_us": lat, "skipped": skipped}), flush=True)
    store.close()
    return 0


def follower_main(url: str, ns: str) -> int:
    """A replica of ``fanout`` that only follows: after ``start``, its ``watch``
    callback records the lag of each new value of ``x`` (the writer's
    ``monotonic_ns()`` taken before its commit) to now; ``stop LAST`` waits until
    it has seen LAST, answers with the lags (µs) and exits."""
    state, store = _state(url, ns)
    lags: list[int] = []
    seen_last = threading.Event()
    want = [-1]
    recording = [False]

    def seen(key: str, old: Any, new: Any) -> None:
        now = time.monotonic_ns()
        if recording[0] and isinstance(new, int):
            lags.append((now - new) // 1000)
            if new == want[0]:
                seen_last.set()

    state.peek("x")  # starts the replica: mirror loaded, follower running
    state.watch("x", seen)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "start":
            recording[0] = True
            print(json.dumps({"started": True}), flush=True)
        elif cmd[0] == "stop":
            want[0] = int(cmd[1])
            if state.peek("x") == want[0]:  # already applied before want was set
                seen_last.set()
            caught_up = seen_last.wait(CATCH_UP_S)
            print(json.dumps({"lag_us": lags, "caught_up": caught_up}), flush=True)
            break
    store.close()
    return 0


@contextlib.contextmanager
def _replicas(argvs: list[list[str]]) -> Iterator[list[subprocess.Popen[str]]]:
    """``python -m benchmarks.redis_scale ARGV`` per argv, all started and ready
    (each printed its first line); stopped by closing their stdin, killed by PID
    when they do not exit."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for argv in argvs:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.redis_scale", *argv],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            _reply(proc)
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the figures -----------------------------------------------------------------------


def _redis_cpu(client: Any) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _step(client: Any, procs: list[subprocess.Popen[str]], rate: float, seconds: float) -> dict[str, Any]:
    """One step of ``rate`` commits/s (all replicas) for ``seconds``: what was
    achieved, the p50/p99 of every ``update()`` call, Redis' CPU and the replicas'
    (cores, over the step)."""
    start_ns = time.monotonic_ns() + LEAD_NS
    for proc in procs:
        _send(proc, f"step {rate} {seconds} {start_ns}")
    _sleep_until(start_ns)
    redis0, clients0 = _redis_cpu(client), sum(cpu_seconds(p.pid) for p in procs)
    _sleep_until(start_ns + int(seconds * 1e9))
    redis1, clients1 = _redis_cpu(client), sum(cpu_seconds(p.pid) for p in procs)
    replies = [_reply(p) for p in procs]
    lat = [x / 1e6 for r in replies for x in r["lat_us"]]
    return {
        "target": rate,
        "achieved": len(lat) / seconds,
        "p50": pct(lat, 0.5) if lat else float("nan"),
        "p99": pct(lat, 0.99) if lat else float("nan"),
        "redis_cpu": (redis1 - redis0) / seconds,
        "clients_cpu": (clients1 - clients0) / seconds,
        "skipped": sum(r["skipped"] for r in replies),
    }


def _ramp(url: str, replicas: int, z: dict[str, Any]) -> dict[str, Any]:
    """``replicas`` processes started once, then steps of a rate rising by
    GROWTH until a step's p99 passes P99_LIMIT or its achieved rate stops
    rising; at the end each counter is checked against the updates that returned."""
    import redis

    ns, threads = _namespace(f"scale{replicas}"), z["threads"]
    argv = ["--load-replica", url, ns]
    client = redis.Redis.from_url(url)
    steps: list[dict[str, Any]] = []
    try:
        with _replicas([[*argv, str(i), str(replicas), str(threads)] for i in range(replicas)]) as procs:
            _step(client, procs, z["start_rate"], z["warmup_s"])  # untimed: connections, code warm
            rate, best, stop = z["start_rate"], None, "the last step"
            while len(steps) < z["max_steps"]:
                step = _step(client, procs, rate, z["step_s"])
                steps.append(step)
                log(
                    f"N={replicas} target {rate:,.0f}/s: achieved {step['achieved']:,.0f}/s, "
                    f"p50 {step['p50'] * 1e3:.2f} ms, p99 {step['p99'] * 1e3:.2f} ms, "
                    f"Redis {step['redis_cpu']:.0%}, replicas {step['clients_cpu']:.0%}"
                )
                if not step["p99"] <= P99_LIMIT:
                    stop = "p99"
                    break
                flat = best is not None and step["achieved"] < best["achieved"] * FLAT
                if best is None or step["achieved"] > best["achieved"]:
                    best = step
                if flat:
                    stop = "flat"
                    break
                rate *= GROWTH
            for proc in procs:
                _send(proc, "stop")
            finals = [_reply(p) for p in procs]
        counts = {k: v for f in finals for k, v in f["counts"].items()}
        errors = sum(f["n_errors"] for f in finals)
        state, store = _state(url, ns)  # a new store: Redis' own values, not a mirror's
        try:
            lost = {k: (n, state.peek(k)) for k, n in counts.items() if state.peek(k) != n}
        finally:
            store.close()
    finally:
        client.close()
    return {
        "replicas": replicas,
        "threads": threads,
        "steps": steps,
        "best": best,
        "stopped": stop,
        "updates": sum(counts.values()),
        "errors": errors,
        "error_samples": [e for f in finals for e in f["errors"]],
        "lost": lost,
    }


def measure_load(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """The ramp for each number of replica processes."""
    return {"by_n": [_ramp(url, n, z) for n in z["replicas"]]}


def _net_out(client: Any) -> int:
    return int(client.info("stats")["total_net_output_bytes"])


def _write_paced(state: Any, rate: float, seconds: float) -> tuple[int, int, list[float]]:
    """``state["x"] = monotonic_ns()`` at ``rate`` per second for ``seconds``:
    the commits made, the last value written, each commit call's seconds."""
    commit: list[float] = []
    last = [0]

    def one() -> None:
        t0 = time.monotonic_ns()
        state["x"] = t0
        commit.append((time.monotonic_ns() - t0) / 1e9)
        last[0] = t0

    start = time.monotonic_ns() + LEAD_NS
    _paced(start, int(1e9 / rate), start + int(seconds * 1e9), one)
    return len(commit), last[0], commit


def measure_fanout(url: str, z: dict[str, Any]) -> dict[str, Any]:
    """One writer (this process) at a fixed rate, F replica processes following:
    their CPU, the lag from the writer's commit to their watch callback, and
    Redis' output bytes per commit per follower (beyond what the writer alone costs)."""
    import redis

    ns, rate, followers = _namespace("fanout"), z["fanout_rate"], z["fanout_followers"]
    state, store = _state(url, ns)
    client = redis.Redis.from_url(url)
    try:
        state["x"] = 0
        # Redis' output with no follower but the writer's own (its replies, its own XREADs).
        _write_paced(state, rate, z["warmup_s"])
        before = _net_out(client)
        base_commits, _, _ = _write_paced(state, rate, z["fanout_base_s"])
        base_bytes = (_net_out(client) - before) / base_commits
        with _replicas([["--follower", url, ns] for _ in range(followers)]) as procs:
            for proc in procs:
                _send(proc, "start")
                _reply(proc)
            net0, redis0 = _net_out(client), _redis_cpu(client)
            cpu0, wall0 = [cpu_seconds(p.pid) for p in procs], time.monotonic()
            writer0 = time.process_time()
            commits, last, commit = _write_paced(state, rate, z["fanout_s"])
            writer_cpu = time.process_time() - writer0
            wall = time.monotonic() - wall0
            cpu = [(cpu_seconds(p.pid) - c) / wall for p, c in zip(procs, cpu0, strict=True)]
            net, redis_cpu = _net_out(client) - net0, _redis_cpu(client) - redis0
            for proc in procs:
                _send(proc, f"stop {last}")
            replies = [_reply(p) for p in procs]
    finally:
        store.close()
        client.close()
    lags = [[x / 1e6 for x in r["lag_us"]] for r in replies]
    every = [x for one in lags for x in one]
    per_follower_bytes = (net / commits - base_bytes) / followers
    return {
        "followers": followers,
        "rate": rate,
        "seconds": z["fanout_s"],
        "commits": commits,
        "seen": [len(one) for one in lags],
        "caught_up": all(r["caught_up"] for r in replies),
        "cpu": cpu,
        "writer_cpu": writer_cpu / wall,
        "redis_cpu": redis_cpu / wall,
        "lag_p50": pct(every, 0.5),
        "lag_p99": pct(every, 0.99),
        "lag_p99_worst": max(pct(one, 0.99) for one in lags),
        "lag_max": max(every),
        "commit_p99": pct(commit, 0.99),
        "bytes_total": net / commits,
        "bytes_base": base_bytes,
        "bytes": per_follower_bytes,
    }


MEASURES = {"load": measure_load, "fanout": measure_fanout}


# -- the table -------------------------------------------------------------------------

LABELS = {
    "load": "{n} replica process{es} x {threads} writer threads, update() of own counters: "
    "highest commits/s with p99 ≤ 20 ms",
    "redis_fanout_cpu": "fan-out: CPU per follower process, {followers} following 1 writer at {rate:,.0f} commits/s",
    "redis_fanout_lag_p99": "fan-out: writer's commit → each follower's watch callback, p99",
    "redis_fanout_bytes": "fan-out: Redis output bytes per commit per follower",
}


def _limit(step: dict[str, Any], writers: int) -> str:
    """What held the rate: Redis' one core, the machine's two (the replicas), or
    the writers' round trip (each ``update()`` waits for its reply: with
    ``writers`` calls in flight the rate is at most ``writers`` / latency)."""
    if step["redis_cpu"] >= 0.85:
        return "Redis' core"
    if step["redis_cpu"] + step["clients_cpu"] >= 1.7:
        return "the 2 cores (replicas' CPU)"
    bound = writers / step["p50"]
    if step["achieved"] >= 0.7 * bound:
        return f"the round trip ({writers} calls in flight / p50 = {bound:,.0f}/s)"
    return "neither CPU full"


def _at(step: dict[str, Any]) -> str:
    """Latency and CPU of a step (CPU also per commit: µs of Redis', of all replicas')."""
    per = 1e6 / max(step["achieved"], 1e-9)
    return (
        f"p50 {step['p50'] * 1e3:.2f} ms, p99 {step['p99'] * 1e3:.2f} ms, "
        f"Redis {step['redis_cpu']:.0%} + replicas {step['clients_cpu']:.0%} of a core, "
        f"{step['redis_cpu'] * per:.0f} + {step['clients_cpu'] * per:.0f} µs per commit"
    )


def _load_row(r: dict[str, Any]) -> Row:
    n, best, last = r["replicas"], r["best"], r["steps"][-1]
    label = LABELS["load"].format(n=n, es="" if n == 1 else "es", threads=r["threads"])
    why = {"p99": "p99 > 20 ms", "flat": "no faster", "the last step": "the last step"}[r["stopped"]]
    if last == best:  # the ramp ended at its best step
        then = f"the ramp ended here ({why}); limit: {_limit(last, n * r['threads'])}"
    else:
        then = f"then {last['target']:,.0f}/s asked, {last['achieved']:,.0f} made ({why}: {_at(last)})"
        then += f"; limit: {_limit(last, n * r['threads'])}"
    off = f"{len(r['lost'])} counters off" if r["lost"] else "every counter exact"
    checked = f"{r['updates']:,} updates, {off}" + (f", {r['errors']} errors" if r["errors"] else "")
    if best is None:
        return Row(f"redis_scale_n{n}", label, None, "", note=f"none; {then}; {checked}", ok=False)
    note = f"commits/s ({_at(best)}); {then}; {checked}"
    ok = best["p99"] <= P99_LIMIT and not r["lost"] and not r["errors"]
    return Row(f"redis_scale_n{n}", label, best["achieved"], "", note=note, ok=ok)


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    if item == "load":
        return [_load_row(one) for one in r["by_n"]]
    row = labelled(LABELS, **r)
    cpu = sorted(r["cpu"])
    all_seen = r["caught_up"] and all(s == r["commits"] for s in r["seen"])
    seen = f"every follower saw all {r['commits']:,} commits" if all_seen else f"seen {r['seen']}"
    return [
        row(
            "redis_fanout_cpu",
            pct(cpu, 0.5),
            "%",
            note=f"of one core, median (max {cpu[-1]:.0%}; writer {r['writer_cpu']:.0%}, "
            f"Redis {r['redis_cpu']:.0%})",
        ),
        row(
            "redis_fanout_lag_p99",
            r["lag_p99"],
            "s",
            note=f"(p50 {r['lag_p50'] * 1e3:.2f} ms, worst follower's p99 {r['lag_p99_worst'] * 1e3:.2f} ms, "
            f"max {r['lag_max'] * 1e3:.2f} ms; {seen})",
            ok=all_seen,
        ),
        row(
            "redis_fanout_bytes",
            r["bytes"],
            "B/commit",
            note=f"(INFO stats total_net_output_bytes: {r['bytes_total']:,.0f} B per commit in all, "
            f"minus {r['bytes_base']:,.0f} with the writer alone, / {r['followers']})",
        ),
    ]


NOTES = """\
Redis scale notes: one redis-server of the run's own on 127.0.0.1 (loopback TCP, no persistence), on the
same 2 shared cores as every replica process. load: N = {replicas} replica processes, each started once
and driven over a pipe, {threads} writer threads each; every thread update()s a counter of its own on a
schedule (its share of the target rate, interleaved with the others', sleeping until its next slot; a
slot missed by more than a period is skipped, not caught up), {step_s} s per step after {warmup_s} s
untimed, target x{growth} per step from {start_rate:,.0f}/s, until a step's p99 passes 20 ms or its
achieved rate stops rising (< x{flat} the best). Latency: each update() call, timed in the replica. CPU:
Redis' INFO cpu (used_cpu_user + used_cpu_sys), the replicas' /proc/<pid>/stat, over the step, in cores
(100% = one core); "limit": Redis' core when Redis used >= 85% of one, the 2 cores when Redis and the
replicas together used >= 170%. Every counter is checked in a new store against the updates that
returned (counters off: lost or doubled updates). fanout: {fanout_followers} follower processes, one
writer (state["x"] = monotonic_ns()) at {fanout_rate:,.0f} commits/s for {fanout_s} s; lag from before
the commit to the follower's watch callback (CLOCK_MONOTONIC, one clock on the host); bytes: Redis 7.0's
CLIENT LIST has no per-client byte count, so INFO stats over the window, minus the writer alone for
{fanout_base_s} s (its replies, its own follower), per follower. benchmarks/README.md, "How far one Redis
carries an app".
"""


def run_all(mode: str) -> tuple[list[Row], dict[str, Any], list[str]]:
    """Every figure, on a redis-server of our own: rows, raw results, failures."""
    from ._client import redis_server

    try:
        server = redis_server().start()
    except Exception as exc:
        return [], {}, [f"redis_scale: {exc}"]
    try:
        GROUP.log(f"redis-server on 127.0.0.1:{server.port}")
        return GROUP.run_items(mode, BENCH_REDIS_URL=server.url)
    finally:
        server.close()


GROUP = Group(
    module="benchmarks.redis_scale",
    title="server_state: how far one Redis carries an app",
    head=("redis scale", "figure", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode], growth=GROWTH, flat=FLAT),
    missed="Redis scale conditions missed",
    run=run_all,
    sizes=SIZES,
    # In a child, on the run's redis-server (its URL in the environment).
    measures={name: lambda z, f=f: f(os.environ["BENCH_REDIS_URL"], z) for name, f in MEASURES.items()},
    rows_for=rows_for,
    child_timeout={"full": 900.0, "smoke": 90.0},
)


def main(argv: list[str]) -> int:
    """``--load-replica URL NS INDEX REPLICAS THREADS``, ``--follower URL NS``: the
    replica processes; anything else: the group's command line."""
    if argv[:1] == ["--load-replica"]:
        url, ns, index, replicas, threads = argv[1:6]
        return load_replica_main(url, ns, int(index), int(replicas), int(threads))
    if argv[:1] == ["--follower"]:
        return follower_main(argv[1], argv[2])
    return GROUP.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
