"""History figures (group ``history``): what keeping the last commits costs
(memory, ``update()``) and what reading them costs (``history()``, ``at()``),
in-process on the memory backend, each item in a child process. Rows, method
and results: benchmarks/README.md.

    python -m benchmarks.history_bench [--full|--smoke] [--json out.json] [--only memory,history,at,update]
"""

from __future__ import annotations

import functools
import gc
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from ._core import Group, Row, Target, by_mode, fmt, median_calls

SIZES = by_mode(  # name=(full, smoke)
    vector=(100_000, 10_000),
    appends=(10_000, 1_000),
    history_sizes=((10, 1_000, 10_000), (10, 100, 1_000)),
    at_depths=((1, 100, 1_000, 9_999), (1, 10, 100, 999)),
    budget=(0.5, 0.05),
    update_ops=(1_000, 200),
    update_repeats=(41, 3),
)


AGE = 1e9  # seconds: the age bound never drops a commit here


# -- helpers -------------------------------------------------------------------------


def _fresh(history: int) -> Any:
    from server_state import ServerState

    state = ServerState()
    state.configure(history=history, history_age=AGE)
    return state


def _interleaved(
    fns: dict[str, Callable[[], Any]], budget: float, *, min_rounds: int = 5
) -> dict[str, float]:
    """Median seconds of one call of each ``fn``, the calls interleaved round
    by round (each ``fn`` called for ~1 ms per round) until ``budget`` seconds
    per ``fn`` are spent: a machine slowed for a while (it is shared) slows
    every ``fn`` alike, so their ratios hold."""
    reps = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        reps[name] = max(1, int(1e-3 / max(time.perf_counter() - t0, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + budget * len(fns)
    rounds = 0
    while rounds < min_rounds or time.perf_counter() < deadline:
        for name, fn in fns.items():
            k = reps[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
        rounds += 1
    return {name: statistics.median(v) for name, v in samples.items()}


def _in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a plain thread (no session, as a background worker), its result."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()), name="writer")
    worker.start()
    worker.join()
    return out[0]


def _int(i: int) -> Any:
    return i


def _message(i: int) -> Any:
    return f"message number {i:07d}"  # a 30-character str: a short chat line


ITEM_KINDS: dict[str, Callable[[int], Any]] = {"ints": _int, "strings": _message}


def appended(
    state: Any, n: int, appends: int, make: Callable[[int], Any], *, key: str = "log", classic: bool = False
) -> list[float]:
    """In a plain thread (no session, as a background worker): ``state[key]``, an ``n``-item
    pvector of ``make(i)`` (``classic``: a list), then ``appends`` appends of ``make(n)``, ...:
    ``update()`` with ``v.append(m)`` (``classic``: ``state[key] = state[key] + [m]``), each
    timed, ``m`` made before; their seconds."""
    return _in_thread(functools.partial(_append, state, n, appends, make, key, classic))


def _append(
    state: Any, n: int, appends: int, make: Callable[[int], Any], key: str, classic: bool
) -> list[float]:
    from pyrsistent import pvector

    state[key] = [make(i) for i in range(n)] if classic else pvector(make(i) for i in range(n))
    gc.collect()
    times = []
    for i in range(n, n + appends):
        m = make(i)
        t0 = time.perf_counter()
        if classic:
            state[key] = state[key] + [m]
        else:
            state.update(key, lambda v, m=m: v.append(m))
        times.append(time.perf_counter() - t0)
    return times


# -- the items; each returns a JSON-able dict of raw figures (seconds, bytes) --------


def item_memory(z: dict[str, Any]) -> dict[str, Any]:
    """Bytes held after the appends, with every append kept and with none,
    for ints (the smallest items: the largest ratio) and short strings."""
    n, appends = z["vector"], z["appends"]
    appended(_fresh(appends), 1_000, 100, _int)  # untraced: imports and first-use set-up are not the state's
    out: dict[str, Any] = {"n": n, "appends": appends}
    for kind, make in ITEM_KINDS.items():
        held: dict[str, int] = {}
        kept: dict[str, int] = {}
        for label, limit in (("off", 0), ("on", appends)):
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            state = _fresh(limit)
            appended(state, n, appends, make)
            gc.collect()
            held[label] = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            kept[label] = len(state.history())
            assert state.peek("log")[-1] == make(n + appends - 1)
            del state
        out[kind] = {"held": held, "kept": kept, "ratio": held["on"] / held["off"]}
    return out


def item_history(z: dict[str, Any]) -> dict[str, Any]:
    """history() listing all of a history of N commits, per entry."""
    sizes = z["history_sizes"]
    states = {}
    for size in sizes:
        state = states[str(size)] = _fresh(size)
        for i in range(size):
            state[f"k{i % 100}"] = i
        assert len(state.history()) == size
    gc.collect()
    times = _interleaved({size: state.history for size, state in states.items()}, z["budget"])
    per_entry = {size: times[size] / int(size) for size in states}
    del states, state
    # A key that one commit of the largest history changed, long ago.
    size = sizes[-1]
    state = _fresh(size)
    state["rare"] = 0
    for i in range(size - 1):
        state[f"k{i % 100}"] = i
    assert [c.keys for c in state.history("rare")] == [("rare",)]
    gc.collect()
    rare = median_calls(lambda: state.history("rare", limit=1), z["budget"])
    return {"per_entry": per_entry, "rare": {"size": size, "s": rare}}


def item_at(z: dict[str, Any]) -> dict[str, Any]:
    """at(seq) d commits back, in the state of ``memory`` with every append kept."""
    n, appends = z["vector"], z["appends"]
    state = _fresh(appends)
    appended(state, n, appends, _int)
    newest = state.history(limit=1)[0].seq
    gc.collect()
    out: dict[str, Any] = {"n": n, "appends": appends, "depths": {}}
    depths = z["at_depths"]
    times = _interleaved({str(d): functools.partial(state.at, newest - d) for d in depths}, z["budget"])
    for depth in depths:
        s = times[str(depth)]
        correct = len(state.at(newest - depth)["log"]) == n + appends - depth
        out["depths"][str(depth)] = {"s": s, "per_commit": s / depth, "correct": correct}
    return out


def item_update(z: dict[str, Any]) -> dict[str, Any]:
    """update() from a plain thread, history off / kept (100) / 10,000; upstream's assignment."""
    from pyrsistent import pvector
    from streamlit_server_state.server_state_item import ServerStateItem

    k: int = z["update_ops"]
    repeats, n = z["update_repeats"], z["vector"]
    limits = {"off": 0, "default": 100, "big": z["appends"]}
    counters = {label: _fresh(limit) for label, limit in limits.items()}
    logs = {label: _fresh(limit) for label, limit in limits.items()}
    item: Any = ServerStateItem()
    item.set_value(0)

    def counter(state: Any) -> Callable[[], None]:
        def loop() -> None:
            for _ in range(k):
                state.update("n", lambda v: v + 1)

        return loop

    def appender(state: Any) -> Callable[[], None]:
        def loop() -> None:
            for i in range(k):
                state.update("log", lambda v, i=i: v.append(i))

        return loop

    def upstream() -> None:
        for _ in range(k):
            item.set_value(item.get_value() + 1)

    loops: dict[str, Callable[[], None]] = {"upstream": upstream}
    for label in limits:
        counters[label]["n"] = 0
        logs[label]["log"] = pvector(range(n))
        loops[f"counter_{label}"] = counter(counters[label])
        loops[f"append_{label}"] = appender(logs[label])

    def timed(loop: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        loop()
        return (time.perf_counter() - t0) / k

    def measure() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(-(-max(limits.values()) // k) + 1):
            for loop in loops.values():
                loop()  # warm-up: fills every history to its bound
        gc.collect()
        for _ in range(repeats):
            for name, loop in loops.items():  # interleaved: noise hits every variant alike
                samples[name].append(timed(loop))
        return samples

    samples = _in_thread(measure)
    kept = {label: len(counters[label].history()) for label in limits}

    def paired(name: str) -> float:
        """On / off of the same round, median over rounds: a machine slower for a while slows both alike."""
        off = samples[name.rsplit("_", 1)[0] + "_off"]
        return statistics.median(a / b for a, b in zip(samples[name], off, strict=True))

    s = {name: statistics.median(v) for name, v in samples.items()}
    on = [name for name in samples if name.startswith(("counter_", "append_")) and not name.endswith("_off")]
    ratios = {name: paired(name) for name in on}
    return {"ops": k, "n": n, "limits": limits, "kept": kept, "s": s, "paired": ratios, "samples": samples}


# Every item_<name> function above, in the order defined: the items, by name.
MEASURES = {name.removeprefix("item_"): f for name, f in list(globals().items()) if name.startswith("item_")}


# -- the table -----------------------------------------------------------------------


LABELS = {  # by row id (or its shape), formatted with the item's figures
    "history_memory": "memory: {appends:,} appends to a {n:,}-item pvector of {what}, "
    "history={appends:,} vs 0",
    "history_list": "history(), {n:,} commits kept: per entry",
    "history_list_flat": "history() per entry: {hi:,} commits / {lo:,}",
    "history_key_rare": "history(key, limit=1), key changed by the oldest of {size:,} commits (info)",
    "at": "at(seq) {k:,} commit{s} back, {n:,}-item pvector + {appends:,} appends",
    "at_flat": "at() per commit undone: {far:,} back / {near:,} back",
    "update": "update() from a thread, {what}, history{history}",
    "update_upstream": "upstream ServerStateItem set_value(get_value() + 1), no history (info)",
}


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    """The rows of one item, from its figures (tests/test_history_bench.py lists every row id)."""
    flat = Target(2.0, note="(O(1) per entry)")
    if item == "memory":
        what, copy = {"ints": "ints", "strings": "30-char strs"}, Target(2.0, note="one copy")
        kept = {"on": r["appends"], "off": 0}

        def memory(kind: str, x: dict[str, Any]) -> Row:
            held = " vs ".join(fmt(x["held"][k], "B") for k in ("on", "off"))
            note, ok = f"one copy ({held}; {x['kept']['on']:,} commits kept)", x["kept"] == kept
            label = LABELS["history_memory"].format(**r, what=what[kind])
            return Row(f"history_memory_{kind}", label, x["ratio"], "x", copy, note, ok=ok)

        return [memory(kind, r[kind]) for kind in ITEM_KINDS]
    if item == "history":
        per, rare = r["per_entry"], r["rare"]
        lo, hi = min(per, key=int), max(per, key=int)
        label = LABELS["history_list_flat"].format(lo=int(lo), hi=int(hi))
        rare_label = LABELS["history_key_rare"].format(**rare)
        rare_note = f"({fmt(rare['s'] / rare['size'], 's')} per commit looked at)"
        return [
            *(Row(f"history_list_{n}", LABELS["history_list"].format(n=int(n)), per[n], "s") for n in per),
            Row("history_list_flat", label, per[hi] / per[lo], "x", flat),
            Row("history_key_rare", rare_label, rare["s"], "s", note=rare_note),
        ]
    if item == "at":
        depths = r["depths"]
        far, near = (depths[k]["per_commit"] for k in (list(depths)[-1], list(depths)[1]))

        def at(k: str, d: dict[str, Any]) -> Row:
            label = LABELS["at"].format(**r, k=int(k), s="s" if int(k) > 1 else "")
            wrong = "" if d["correct"] else " (wrong state!)"
            note = f"({fmt(d['per_commit'], 's')} per commit undone){wrong}"
            return Row(f"at_{k}", label, d["s"], "s", note=note, ok=d["correct"])

        label = LABELS["at_flat"].format(far=int(list(depths)[-1]), near=int(list(depths)[1]))
        return [
            *(at(k, d) for k, d in depths.items()),
            Row("at_flat", label, far / near, "x", Target(2.0, note="(O(1) per commit undone)")),
        ]
    s, limits, paired = r["s"], r["limits"], r["paired"]
    full = r["kept"] == limits  # every history at its bound while timed
    bad = "" if full else f" (history kept {r['kept']}, not {limits}!)"
    history = {"off": " off", "default": f"={limits['default']:,}", "big": f"={limits['big']:,}"}

    def update(what: str, v: str, label: str) -> Row:  # note: "(1.25x off, +540 ns per commit)"
        x = paired.get(f"{what}_{v}", 1.0)
        more = f"({x:.2f}x off, +{fmt(s[f'{what}_off'] * (x - 1), 's')} per commit)"
        note = bad if v == "off" else more + bad
        label = LABELS["update"].format(what=label, history=history[v])
        return Row(f"update_{what}_{v}", label, s[f"{what}_{v}"], "s", note=note, ok=full)

    ratio = f"(ours, history={limits['default']}: {s['counter_default'] / s['upstream']:.2f}x)"
    return [
        *(update("counter", v, "counter +1") for v in history),
        *(update("append", v, f"append to a {r['n']:,}-item pvector") for v in history),
        Row("update_upstream", LABELS["update_upstream"], s["upstream"], "s", note=ratio),
    ]


NOTES = """\
History notes: {vector:,}-item pvectors and {appends:,} appends; update(): {update_repeats} rounds of {update_ops:,} calls
per variant. How each figure is measured: benchmarks/README.md, "The history figures".
"""


GROUP = Group(
    module="benchmarks.history_bench",
    title="server_state history figures",
    head=("history", "ours", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode]),
    missed="History targets missed",
    sizes=SIZES,
    measures=MEASURES,
    rows_for=rows_for,
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
