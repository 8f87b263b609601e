"""Expiry figures (group ``expiry``): what a lifetime costs a write, what
100,000 keys with deadlines cost (memory, start, idle CPU), how fast keys
whose deadlines passed are expired; each item in a child process. Rows,
method and results: benchmarks/README.md.

    python -m benchmarks.expiry_bench [--full|--smoke] [--json out.json] [--only write,many,expire]
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from ._core import Group, Row, Target, by_mode, fmt

SIZES = by_mode(  # name=(full, smoke)
    keys=(100_000, 5_000),
    expiring=(10_000, 1_000),
    rounds=(41, 5),
    calls=(2_000, 200),
    idle_seconds=(5.0, 0.5),
)

HOUR = 3600.0


def _memory_state() -> Any:
    from server_state import ServerState
    from server_state._store import MemoryStore

    state = ServerState(MemoryStore())
    state.configure(history=0)
    return state


def _sqlite_state(path: str) -> Any:
    from server_state import ServerState
    from server_state._store import store_from_url

    state = ServerState(store_from_url(f"sqlite:///{path}"))
    state.configure(history=0)
    return state


def _paired(loops: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each loop, round by round, interleaved (a machine
    slower for a while slows every variant of that round alike)."""
    for loop in loops.values():
        loop()  # warm-up
    gc.collect()
    samples: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            t0 = time.perf_counter()
            loop()
            samples[name].append(time.perf_counter() - t0)
    return samples


def _write_loops(plain: Any, idle: Any, calls: int) -> dict[str, Callable[[], None]]:
    """Writes of a key with an idle lifetime (in ``idle``) and of a key in a
    state where no key has a lifetime (``plain``): what an app that gives its
    key a lifetime pays against one that does not."""
    plain["k"] = 0
    idle.set("k", 0, idle=HOUR)
    counter = [0]

    def assign(state: Any) -> Callable[[], None]:
        def loop() -> None:
            i = counter[0]
            for j in range(i, i + calls):
                state["k"] = j
            counter[0] = i + calls

        return loop

    def update(state: Any) -> Callable[[], None]:
        def loop() -> None:
            for _ in range(calls):
                state.update("k", _inc)

        return loop

    return {
        "assign_plain": assign(plain),
        "assign_idle": assign(idle),
        "update_plain": update(plain),
        "update_idle": update(idle),
    }


def _inc(v: int) -> int:
    return v + 1


def _ratios(samples: dict[str, list[float]], calls: int) -> dict[str, Any]:
    per = {name: statistics.median(v) / calls for name, v in samples.items()}
    ratio = {
        what: statistics.median(
            a / b for a, b in zip(samples[f"{what}_idle"], samples[f"{what}_plain"], strict=True)
        )
        for what in ("assign", "update")
    }
    return {"per_call": per, "ratio": ratio}


# -- the items ---------------------------------------------------------------------------


def item_write(z: dict[str, Any]) -> dict[str, Any]:
    """A write of a key with an idle lifetime (a plain assignment, which moves
    its deadline on; ``update``) against the same write of a key without, on
    memory and on SQLite (synchronous=normal), from a plain thread."""
    out: dict[str, Any] = {"calls": z["calls"], "rounds": z["rounds"]}

    def run() -> None:
        plain, idle = _memory_state(), _memory_state()
        out["memory"] = _ratios(_paired(_write_loops(plain, idle, z["calls"]), z["rounds"]), z["calls"])
        assert idle.deadline("k") is not None and plain.deadline("k") is None
        with tempfile.TemporaryDirectory() as tmp:
            plain, idle = _sqlite_state(f"{tmp}/plain.db"), _sqlite_state(f"{tmp}/idle.db")
            calls = max(z["calls"] // 10, 20)
            loops = _write_loops(plain, idle, calls)
            out["sqlite"] = _ratios(_paired(loops, max(z["rounds"] // 2, 3)), calls)
            plain._store.close()
            idle._store.close()

    worker = threading.Thread(target=run, name="writer")
    worker.start()
    worker.join()
    return out


def item_many(z: dict[str, Any]) -> dict[str, Any]:
    """``keys`` keys set with an idle lifetime of an hour, against the same
    keys without: seconds to set them, then (traced) bytes held, and the idle
    CPU of the process while the deadlines are pending."""
    n = z["keys"]
    out: dict[str, Any] = {"n": n}
    for label, kwargs in (("plain", {}), ("idle", {"idle": HOUR})):
        _fill(_memory_state(), 100, kwargs)  # first use: imports and set-up are no one's cost
        gc.collect()
        state = _memory_state()
        seconds = _fill(state, n, kwargs)
        out[label] = {"s": seconds, "keys": len(state), "pending": state._store.clock.pending()}
        if label == "idle":
            cpu0, wall0 = time.process_time(), time.perf_counter()
            threading.Event().wait(z["idle_seconds"])  # the process idles: what the clock costs
            out["idle_cpu"] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        state._store.close()
        del state
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        state = _memory_state()
        _fill(state, n, kwargs)
        gc.collect()
        out[label]["held"] = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        state._store.close()
        del state
    return out


def _fill(state: Any, n: int, kwargs: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        state.set(f"user/{i}", i, **kwargs)
    return time.perf_counter() - t0


def item_expire(z: dict[str, Any]) -> dict[str, Any]:
    """``expiring`` keys whose deadline passes at once: seconds until the
    last one is gone (one commit each), expiries per second."""
    n = z["expiring"]
    state = _memory_state()
    done = threading.Event()
    seen = [0]

    def gone(key: str, old: Any, new: Any) -> None:
        seen[0] += 1
        if seen[0] == n:
            done.set()

    at = time.time() + 0.5
    for i in range(n):
        state.set(f"k{i}", i, at=at)
    state.watch([f"k{i}" for i in range(n)], gone)
    done.wait(at - time.time() + 120)
    seconds = time.time() - at
    out = {"n": n, "s": seconds, "left": len(state), "expired": seen[0]}
    state._store.close()
    return out


MEASURES = {name.removeprefix("item_"): f for name, f in list(globals().items()) if name.startswith("item_")}


# -- the table ---------------------------------------------------------------------------


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    """The rows of one item (tests/test_benchmarks_smoke.py lists every row id)."""
    if item == "write":
        rows = []
        for backend in ("memory", "sqlite"):
            x = r[backend]
            for what, label in (("assign", "server_state[k] = v"), ("update", "update(k, fn)")):
                idle, plain = x["per_call"][f"{what}_idle"], x["per_call"][f"{what}_plain"]
                rows.append(
                    Row(
                        f"expiry_{what}_{backend}",
                        f"{label} on {backend}: a key with an idle lifetime vs no lifetimes at all",
                        x["ratio"][what],
                        "x",
                        Target(1.1),
                        note=f"({fmt(idle, 's')} vs {fmt(plain, 's')})",
                    )
                )
        return rows
    if item == "many":
        n, plain, idle = r["n"], r["plain"], r["idle"]
        ok = idle["keys"] == plain["keys"] == n and idle["pending"] == n
        per_key = (idle["held"] - plain["held"]) / n
        return [
            Row(
                "expiry_many_set",
                f"set {n:,} keys with an idle lifetime (memory), vs without",
                idle["s"],
                "s",
                note=f"({fmt(plain['s'], 's')} without; {idle['s'] / plain['s']:.2f}x)",
                ok=ok,
            ),
            Row(
                "expiry_many_memory",
                f"memory held per key for its deadline, {n:,} keys (memory)",
                per_key,
                "bytes",
                note=f"({fmt(idle['held'], 'B')} vs {fmt(plain['held'], 'B')} without)",
                ok=ok,
            ),
            Row(
                "expiry_idle_cpu",
                f"idle CPU of a process with {n:,} deadlines pending, of one core",
                r["idle_cpu"],
                "%",
                Target(0.01),
            ),
        ]
    ok = r["left"] == 0 and r["expired"] == r["n"]
    return [
        Row(
            "expiry_rate",
            f"{r['n']:,} keys expiring at once: one commit each, until the last is gone",
            r["s"],
            "s",
            note=f"({r['n'] / max(r['s'], 1e-9):,.0f} expiries/s)",
            ok=ok,
        )
    ]


NOTES = """\
Expiry notes: writes interleaved round by round ({rounds} rounds of {calls:,} calls on memory, a tenth on SQLite),
from a plain thread, history off. How each figure is measured: benchmarks/README.md, "The expiry figures".
"""

GROUP = Group(
    module="benchmarks.expiry_bench",
    title="server_state expiry figures",
    head=("expiry", "ours", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode]),
    missed="Expiry targets missed",
    sizes=SIZES,
    measures=MEASURES,
    rows_for=rows_for,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
