"""Hardening figures (group ``hardening``): in-process costs of the items of the
hardening round (#6 ... #17), fresh ``ServerState()`` instances, public API only,
each item in a child process. Rows and method: benchmarks/README.md.

    python -m benchmarks.hardening [--full|--smoke] [--json out.json] [--only 6,9,...]
"""

from __future__ import annotations

import gc
import statistics
import sys
import threading
import time
import tracemalloc
from collections import namedtuple
from collections.abc import Callable
from typing import Any

from ._core import MB, Group, Row, Target, by_mode, fmt, labelled, median_calls, rss, timed
from .history_bench import appended

SIZES = by_mode(  # name=(full, smoke)
    equal_ints=(1_000_000, 100_000),
    equal_floats=(1_000_000, 100_000),
    equal_dicts=(100_000, 10_000),
    equal_repeat=(5, 2),
    transact_keys=((100, 10_000, 100_000), (100, 1_000, 10_000)),
    transact_budget=(1.0, 0.2),
    progress_keys=(50_000, 5_000),
    progress_bound=(20.0, 3.0),
    burst_writes=(300_000, 30_000),
    burst_keys=(1_000, 1_000),
    burst_trials=(3, 1),
    churn=(1_000_000, 50_000),
    vector_replaced=(2_000_000, 200_000),
    vector_first_read=(100_000, 10_000),
    first_read_threads=(8, 8),
    first_read_trials=(5, 2),
    append_items=(100_000, 10_000),
    append_repeat=(20, 5),
    named_keys=(200_000, 20_000),
)


# -- helpers -------------------------------------------------------------------------


def _fresh() -> Any:
    from server_state import ServerState

    return ServerState()


def _fill(state: Any, n: int, prefix: str = "k") -> None:
    for i in range(n):
        state[f"{prefix}{i}"] = i


# -- the items; each returns a JSON-able dict of raw figures (seconds, bytes) --------


def item_6(z: dict[str, Any]) -> dict[str, Any]:
    """An equal write: the second write of an equal but distinct value."""
    makers: dict[str, Callable[[int], list[Any]]] = {
        "ints": lambda n: list(range(n)),
        "floats": lambda n: [float(i) for i in range(n)],
        "dicts": lambda n: [{"id": i, "name": f"user{i}"} for i in range(n)],
    }
    out: dict[str, Any] = {}
    for kind, make in makers.items():
        n = z[f"equal_{kind}"]
        state = _fresh()
        state["v"] = make(n)
        version = state.version("v")
        samples = []
        for _ in range(z["equal_repeat"]):
            again = make(n)  # equal, distinct, built outside the timing
            gc.collect()
            samples.append(timed(lambda again=again, state=state: state.__setitem__("v", again)))
            del again
        advanced = state.version("v") != version
        out[kind] = {"n": n, "s": statistics.median(samples), "version_advanced": advanced}
    return out


def item_9(z: dict[str, Any]) -> dict[str, Any]:
    """transact() touching 2 keys, by state size; progress under a write storm."""

    def move(s: Any) -> Any:
        return s.set("a", s["a"] - 1).set("b", s["b"] + 1)

    cost: dict[str, float] = {}
    for n in z["transact_keys"]:
        state = _fresh()
        _fill(state, n - 2)
        state["a"], state["b"] = 10**9, 0
        state.transact(move)  # untimed: the first one takes every pending write
        gc.collect()
        cost[str(n)] = median_calls(
            lambda state=state: state.transact(move), z["transact_budget"], min_calls=3
        )
        del state

    n = z["progress_keys"]
    state = _fresh()
    _fill(state, n - 3)
    state["a"], state["b"], state["tick"] = 10**9, 0, 0
    state.snapshot()
    stop = threading.Event()
    abort = threading.Event()
    attempts = 0
    outcome: dict[str, Any] = {}

    class Aborted(Exception):
        pass

    def ticker() -> None:
        i = 0
        while not stop.wait(0.003):  # another key, every 3 ms
            i += 1
            state["tick"] = i

    def counted(s: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if abort.is_set():
            raise Aborted
        return move(s)

    def transactor() -> None:
        t0 = time.perf_counter()
        try:
            state.transact(counted)
            outcome["s"] = time.perf_counter() - t0
        except Aborted:
            pass

    tick = threading.Thread(target=ticker, name="ticker", daemon=True)
    tick.start()
    time.sleep(0.05)  # the storm is on
    worker = threading.Thread(target=transactor, name="transactor", daemon=True)
    worker.start()
    worker.join(z["progress_bound"])
    finished = not worker.is_alive()
    abort.set()  # a still-running transact raises at its next attempt...
    stop.set()  # ...or commits now that the storm has stopped
    tick.join(5)
    worker.join(5)
    s = outcome.get("s") if finished else None
    progress = {"keys": n, "finished": finished, "s": s, "attempts": attempts, "bound": z["progress_bound"]}
    return {"cost": cost, "progress": {**progress, "ticks": state.peek("tick")}}


def _burst_and_snapshot(nkeys: int, writes: int) -> dict[str, float]:
    """``writes`` writes spread over ``nkeys`` keys, then the first snapshot()
    while another thread writes and times each of its writes. Then the same
    with the main thread running plain Python for as long, holding no lock of
    the state: the writer's stall from the interpreter alone."""
    state = _fresh()
    for i in range(writes):
        state[f"burst{i % nkeys}"] = i
    gc.collect()

    spans: list[tuple[float, float]] = []
    started = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        clock = time.perf_counter
        j = 0
        while not stop.is_set():
            j += 1
            t0 = clock()
            state["writer"] = j
            spans.append((t0, clock()))
            if j == 2000:
                started.set()

    def longest(t0: float, t1: float) -> float:
        return max((e - s for s, e in spans if e >= t0 and s <= t1), default=0.0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    gc.disable()
    try:
        thread = threading.Thread(target=writer, name="writer", daemon=True)
        thread.start()
        started.wait(10)
        time.sleep(0.005)
        t0 = time.perf_counter()
        state.snapshot()
        t1 = time.perf_counter()
        time.sleep(0.005)
        c0 = time.perf_counter()
        busy = 0
        while time.perf_counter() - c0 < min(t1 - t0, 0.05):  # Python work, no state lock
            busy += 1
        c1 = time.perf_counter()
        time.sleep(0.005)
        stop.set()
        thread.join(10)
    finally:
        gc.enable()
        sys.setswitchinterval(interval)
    return {"snapshot_s": t1 - t0, "max_blocked_s": longest(t0, t1), "control_max_s": longest(c0, c1)}


def item_10(z: dict[str, Any]) -> dict[str, Any]:
    """The first snapshot() after a burst of writes, and the longest a writer
    thread was blocked meanwhile (GIL switch interval 0.1 ms, GC off in the
    window, so that a stall is the lock, not the interpreter). Over
    ``burst_keys`` keys (median of ``burst_trials``) and over distinct keys."""
    writes, keys = z["burst_writes"], z["burst_keys"]
    trials = [_burst_and_snapshot(keys, writes) for _ in range(z["burst_trials"])]
    few = {k: statistics.median(t[k] for t in trials) for k in trials[0]}
    distinct = _burst_and_snapshot(writes, writes)
    return {"writes": writes, "keys": keys, "trials": len(trials), "few": few, "distinct": distinct}


def item_13(z: dict[str, Any]) -> dict[str, Any]:
    """Churn of per-user keys: set then delete, n distinct keys."""
    n = z["churn"]
    state = _fresh()
    state["live"] = 1
    gc.collect()
    rss0 = rss()
    t0 = time.perf_counter()
    for i in range(n):
        key = f"user:{i}"
        state[key] = {"name": "someone", "visits": i}
        del state[key]
    churn_s = time.perf_counter() - t0
    gc.collect()
    rss1 = rss()
    assert state.keys() == ["live"], state.keys()[:5]

    def best(fn: Callable[[], Any]) -> float:
        return min(timed(fn) for _ in range(3))

    calls = {"keys_s": state.keys, "list_s": lambda: list(state), "repr_s": lambda: repr(state)}
    times = {k: best(f) for k, f in calls.items()}
    return {"n": n, "churn_s": churn_s, "rss_growth": rss1 - rss0, **times, "len": len(state)}


def item_14(z: dict[str, Any]) -> dict[str, Any]:
    """Memory still held after a large pvector, read once, is replaced by []."""
    from pyrsistent import pvector

    n = z["vector_replaced"]
    state = _fresh()
    state["v"] = []
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state["v"] = pvector(range(n))
    stored = tracemalloc.get_traced_memory()[0] - base
    assert len(state["v"]) == n  # one read: the read form is built (and cached)
    read = tracemalloc.get_traced_memory()[0] - base
    state["v"] = []
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"n": n, "stored_bytes": stored, "after_read_bytes": read, "held_bytes": held}


def item_15(z: dict[str, Any]) -> dict[str, Any]:
    """Threads reading a new pvector version for the first time, all at once."""
    from pyrsistent import pvector

    n, threads, trials = z["vector_first_read"], z["first_read_threads"], z["first_read_trials"]
    state = _fresh()
    state["v"] = pvector(range(n))
    assert len(state["v"]) == n  # the first version's read form, out of the way

    def new_version() -> None:
        state.update("v", lambda v: v.set(0, v[0] + 1))
        gc.collect()

    singles = []
    for _ in range(trials):
        new_version()
        singles.append(timed(lambda: state["v"]))

    ratios, totals, distinct = [], [], []
    for _ in range(trials):
        new_version()
        barrier = threading.Barrier(threads + 1)
        results: list[Any] = [None] * threads
        ends = [0.0] * threads

        def reader(i: int, barrier: threading.Barrier, results: list[Any], ends: list[float]) -> None:
            barrier.wait()
            results[i] = state["v"]
            ends[i] = time.perf_counter()

        workers = [
            threading.Thread(target=reader, args=(i, barrier, results, ends), daemon=True)
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        barrier.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join(60)
        total = max(ends) - t0
        totals.append(total)
        distinct.append(len({id(r) for r in results}))
        ratios.append(total / statistics.median(singles))
    single, concurrent = statistics.median(singles), statistics.median(totals)
    figures = {"single_s": single, "concurrent_s": concurrent, "ratio": statistics.median(ratios)}
    return {"n": n, "threads": threads, **figures, "distinct_results": max(distinct)}


Msg = namedtuple("Msg", "user text")

APPEND_KINDS: dict[str, Callable[[int], Any]] = {
    "ints": lambda i: i,
    "dicts": lambda i: {"user": "someone", "text": f"message {i}"},
    "tuples": lambda i: ("someone", f"message {i}"),
    "namedtuples": lambda i: Msg("someone", f"message {i}"),
    "frozensets": lambda i: frozenset({i, -i - 1}),
}


def item_16(z: dict[str, Any]) -> dict[str, Any]:
    """The classic append, ``state["msgs"] = state["msgs"] + [m]``, by item type."""
    n, repeat = z["append_items"], z["append_repeat"]
    out: dict[str, Any] = {}
    for kind, make in APPEND_KINDS.items():
        samples = appended(_fresh(), n, repeat, make, key="msgs", classic=True)
        out[kind] = {"n": n, "s": statistics.median(samples)}
    return out


def item_17(z: dict[str, Any]) -> dict[str, Any]:
    """A snapshot of two named keys in a large state; snapshot order vs keys()."""
    n = z["named_keys"]
    state = _fresh()
    half = n // 2
    _fill(state, half, "a")
    state["email"] = "someone@example.com"
    state["name"] = "someone"
    _fill(state, n - half - 2, "b")
    del state["a1"]
    state["a1"] = "set again: last in first-set order"
    state.snapshot()  # untimed: takes the pending writes
    gc.collect()
    named_s = median_calls(lambda: dict(state.snapshot("name", "email")), 0.5, min_calls=5)
    keys = state.keys()
    full_order = list(state.snapshot()) == keys
    named_order = list(state.snapshot("name", "email")) == [k for k in keys if k in ("name", "email")]
    value = dict(state.snapshot("name", "email"))
    orders = {"full_order_equal": full_order, "named_order_equal": named_order}
    return {"n": n, "named_s": named_s, "value": value, **orders}


# Every item_<name> function above, in the order defined: the items, by name.
MEASURES = {name.removeprefix("item_"): f for name, f in list(globals().items()) if name.startswith("item_")}


# -- the table -----------------------------------------------------------------------


LABELS = {  # by row id, formatted with the item's figures
    "equal_write_ints": "#6 equal write of a list of {ints[n]:,} ints (2nd write)",
    "equal_write_floats": "#6 equal write of a list of {floats[n]:,} floats (2nd write)",
    "equal_write_dicts": "#6 equal write of a list of {dicts[n]:,} small dicts (2nd write)",
    "transact_small": "#9 transact() touching 2 keys, {lo:,} keys in the state",
    "transact_mid": "#9 transact() touching 2 keys, {mid:,} keys in the state",
    "transact_large": "#9 transact() touching 2 keys, {hi:,} keys in the state",
    "transact_flat": "#9 transact(): {hi:,} keys / {lo:,} keys",
    "transact_progress": "#9 transact() on a/b, {keys:,} keys, another key written every 3 ms",
    "burst_snapshot_few": "#10 first snapshot() after {writes:,} writes to {keys:,} keys",
    "burst_writer_blocked_few": "#10 longest write of another thread during it ({keys:,} keys)",
    "burst_snapshot_distinct": "#10 first snapshot() after {writes:,} writes to distinct keys",
    "burst_writer_blocked_distinct": "#10 longest write of another thread during it (distinct keys)",
    "churn_rss": "#13 RSS growth after {n:,} set+del of distinct keys",
    "churn_keys": "#13 keys() after that churn, 1 live key",
    "churn_iter": "#13 list(state) after that churn, 1 live key",
    "churn_repr": "#13 repr(state) after that churn, 1 live key",
    "replaced_vector_held": "#14 memory held after a read {n:,}-item pvector is replaced by []",
    "first_read_concurrent": "#15 {threads} threads' first read of a new {n:,}-item pvector / 1 thread's",
    **{f"append_{k}": f"#16 state['msgs'] = state['msgs'] + [m], {{{k}[n]:,}} {k}" for k in APPEND_KINDS},
    "named_snapshot": "#17 dict(snapshot('name', 'email')), {n:,} keys",
    "snapshot_order": "#17 snapshot iteration order == keys() order: orders that differ",
}


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    """The rows of one item, from its figures (tests/test_benchmarks_smoke.py lists every row id)."""
    ms1, fast = Target(0.001), Target(0.001, "<")
    row = labelled(LABELS, **r)
    if item == "6":

        def equal(kind: str, limit: Target | None) -> Row:
            bad = r[kind]["version_advanced"]
            note = "(version advanced!)" if bad else ""
            return row(f"equal_write_{kind}", r[kind]["s"], "s", limit, note, ok=not bad)

        return [equal("ints", Target(0.060)), equal("floats", None), equal("dicts", None)]
    if item == "9":
        cost, p = r["cost"], r["progress"]
        lo, mid, hi = (int(k) for k in cost)
        row = labelled(LABELS, **p, lo=lo, mid=mid, hi=hi)
        attempts = f"{p['attempts']} attempts"
        fig = f"({attempts})" if p["finished"] else f"(not finished in {p['bound']:.0f} s, {attempts})"
        s = list(cost.values())
        return [
            *(row(f"transact_{size}", c, "s") for size, c in zip(("small", "mid", "large"), s, strict=True)),
            row("transact_flat", s[-1] / s[0], "x", Target(2.0)),
            row("transact_progress", p["s"], "s", Target(1.0, "<", note="(finishes)"), fig, ok=p["finished"]),
        ]
    if item == "10":

        def burst(v: str, x: dict[str, float]) -> list[Row]:
            no_lock = f"(no lock held: {fmt(x['control_max_s'], 's')})"
            blocked = row(f"burst_writer_blocked_{v}", x["max_blocked_s"], "s", ms1, no_lock)
            return [row(f"burst_snapshot_{v}", x["snapshot_s"], "s"), blocked]

        return [*burst("few", r["few"]), *burst("distinct", r["distinct"])]
    if item == "13":
        per = f"({r['churn_s'] / r['n'] * 1e6:.1f} µs per set+del)"
        return [
            row("churn_rss", r["rss_growth"], "B", Target(20 * MB * r["n"] / 1_000_000), per),
            row("churn_keys", r["keys_s"], "s", fast),
            row("churn_iter", r["list_s"], "s", fast),
            row("churn_repr", r["repr_s"], "s", fast),
        ]
    if item == "14":
        note = f"(stored {r['stored_bytes'] / MB:.0f} MB, read {r['after_read_bytes'] / MB:.0f} MB)"
        return [row("replaced_vector_held", r["held_bytes"], "B", Target(MB), note)]
    if item == "15":
        times = f"{fmt(r['concurrent_s'], 's')} vs {fmt(r['single_s'], 's')}"
        note = f"({times}; {r['distinct_results']} distinct results)"
        return [row("first_read_concurrent", r["ratio"], "x", Target(1.5), note)]
    if item == "16":
        base, x2 = r["ints"]["s"], Target(2.0, of="ints")
        notes = {k: f"({r[k]['s'] / base:.1f}x ints)" for k in APPEND_KINDS if k != "ints"}
        others = (row(f"append_{k}", r[k]["s"], "s", x2, note, base=base) for k, note in notes.items())
        return [row("append_ints", base, "s"), *others]
    orders = f"(full: {r['full_order_equal']}, named: {r['named_order_equal']})"
    differ = 2 - r["full_order_equal"] - r["named_order_equal"]
    return [
        row("named_snapshot", r["named_s"], "s", ms1),
        row("snapshot_order", differ, "", Target(0, "=="), orders),
    ]


NOTES = """\
Hardening notes: #9's transact given {progress_bound:.0f} s; #10's {burst_keys:,}-key figures: median of {burst_trials} run(s);
#15: {first_read_threads} threads. How each figure is measured: benchmarks/README.md, "The hardening figures".
"""


GROUP = Group(
    module="benchmarks.hardening",
    title="server_state hardening figures",
    head=("hardening", "ours", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode]),
    missed="Hardening targets missed",
    item_prefix="#",
    sizes=SIZES,
    child_timeout={"full": 150.0, "smoke": 60.0},
    measures=MEASURES,
    rows_for=rows_for,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
