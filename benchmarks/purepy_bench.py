"""server_state on pyrsistent's pure-Python vector (group ``purepy``), each item in a
child interpreter with ``PYRSISTENT_NO_C_EXTENSION=1``. Rows: benchmarks/README.md.

    python -m benchmarks.purepy_bench [--full|--smoke] [--json out.json] [--only ITEMS]
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from ._core import Group, Row, Target, labelled

SIZES: dict[str, dict[str, Any]] = {
    "full": {"sizes": (1_000, 10_000, 100_000), "ops": 2_000, "repeats": 7, "vector": 100_000},
    "smoke": {"sizes": (1_000, 10_000, 100_000), "ops": 200, "repeats": 2, "vector": 10_000},
}
FLAT = 2.0  # the 100k append at most this times the 1k one
UNCHANGED_US = 50.0  # an unchanged pyrsistent write of a 100k vector: identity, not a pass over it


def _pure_python() -> str:
    from server_state._pcompat import C_PVECTOR

    if C_PVECTOR is not None:
        raise RuntimeError("pyrsistent's C extension is in use: PYRSISTENT_NO_C_EXTENSION was not honoured")
    return "pure-Python PVector"


def item_append(z: dict[str, Any]) -> dict[str, Any]:
    """Median µs of one ``update(key, lambda v: v.append(i))`` per size."""
    from pyrsistent import pvector

    from server_state import ServerState

    vector = _pure_python()
    k: int = z["ops"]
    states = {}
    for n in z["sizes"]:
        state = ServerState()
        state["log"] = pvector(range(n))
        states[n] = state
    samples: dict[int, list[float]] = {n: [] for n in z["sizes"]}
    for _ in range(z["repeats"]):  # sizes interleaved: load on the machine hits all alike
        for n, state in states.items():
            t0 = time.perf_counter()
            for i in range(k):
                state.update("log", lambda v, i=i: v.append(i))
            samples[n].append((time.perf_counter() - t0) / k * 1e6)
    for n, state in states.items():
        assert len(state.snapshot()["log"]) == n + k * z["repeats"]
    return {"vector": vector, "us": {str(n): statistics.median(s) for n, s in samples.items()}}


def item_unchanged(z: dict[str, Any]) -> dict[str, Any]:
    """An unchanged pyrsistent value written again: µs, and whether anything changed."""
    from pyrsistent import pvector

    from server_state import ServerState

    vector = _pure_python()
    state = ServerState()
    value = pvector(range(z["vector"]))
    state["v"] = value
    version = state.version("v")
    stored = state.snapshot().stored("v")
    k: int = z["ops"]
    t0 = time.perf_counter()
    for _ in range(k):
        state["v"] = stored
    us = (time.perf_counter() - t0) / k * 1e6
    return {
        "vector": vector,
        "us": us,
        "n": z["vector"],
        "same_object": stored is value,
        "version_kept": state.version("v") == version,
    }


MEASURES = {"append": item_append, "unchanged": item_unchanged}


LABELS = {  # by row id (or its shape), formatted with the item's figures
    "purepy_append": "append update(), pure-Python pvector, n={n:,}",
    "purepy_append_flat": "append update(), pure-Python pvector: n={hi:,} / n={lo:,}",
    "purepy_unchanged_write": "unchanged pyrsistent write, pure-Python pvector, n={n:,}",
}


def rows_for(item: str, r: dict[str, Any]) -> list[Row]:
    if item == "append":
        us = {int(n): t / 1e6 for n, t in r["us"].items()}
        lo, hi = min(us), max(us)
        row, label = labelled(LABELS, lo=lo, hi=hi), LABELS["purepy_append"].format
        flat = Target(FLAT, note="(O(log n))")
        sized = [Row(f"purepy_append_{n}", label(n=n), t, "s") for n, t in us.items()]
        return [*sized, row("purepy_append_flat", us[hi] / us[lo], "x", flat)]
    note = f"(stored as the same object: {r['same_object']}, version kept: {r['version_kept']})"
    unchanged, ok = Target(UNCHANGED_US / 1e6, note="(no change)"), r["same_object"] and r["version_kept"]
    return [labelled(LABELS, **r)("purepy_unchanged_write", r["us"] / 1e6, "s", unchanged, note, ok=ok)]


NOTES = """\
Pure-Python pyrsistent notes:
- Each item in a child process with PYRSISTENT_NO_C_EXTENSION=1: pyrsistent's pure-Python PVector, as on
  Python 3.13 (no pyrsistent 0.20 wheel there). In-process, no server: fresh ServerState(), public API.
- append: median over {repeats} rounds of {ops:,} update() appends per size, sizes interleaved; GC on.
- unchanged write: the stored value assigned again, {ops:,} times; "version kept": no commit, so no rerun.
"""

GROUP = Group(
    module="benchmarks.purepy_bench",
    title="server_state on pyrsistent's pure-Python vector",
    head=("purepy", "ours", "target", "met"),
    notes=lambda mode: NOTES.format(**SIZES[mode]),
    missed="Pure-Python pyrsistent targets missed",
    sizes=SIZES,
    measures=MEASURES,
    rows_for=rows_for,
    child_env={"PYRSISTENT_NO_C_EXTENSION": "1"},
)

if __name__ == "__main__":
    sys.exit(GROUP.main())
