"""In-session microbenchmarks of both libraries, in one real Streamlit session
(method: benchmarks/README.md, "How it measures").

Each benchmark is a button ("run read", "run append_classic_100000", ...),
driven by ``benchmarks/upstream.py``: a click runs it in that script run, on the
script thread; buttons, being one-shot, make sure a rerun pushed by
server_state runs no benchmark again. Results are merged into the JSON file
named by ``$SERVER_STATE_BENCH_OUT``; the page shows ``done <name> <seq>`` (or
``failed <name> <seq>: <error>``), and keeps every such line on later runs: a
rerun right after a run that read and wrote a key drops that run's unsent
output. Sizes: query parameter ``mode=smoke|full``. Loop overhead (~20 ns) is
not subtracted; appended messages are built inside the timed loop, as an app
builds each new message. Every expression's value is assigned (``_ = s["k"]``):
a bare expression statement is Streamlit "magic", even inside a function.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import statistics
import sys
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import streamlit as st
from pyrsistent import pmap, pvector
from streamlit_server_state import no_rerun as up_no_rerun
from streamlit_server_state import server_state as up_state
from streamlit_server_state import server_state_lock as up_lock

from server_state import server_state, server_state_lock

perf = time.perf_counter_ns
NO_CONTEXT = contextlib.nullcontext()  # reusable: what ours runs in where upstream runs in no_rerun

SIZES: dict[str, tuple[Any, Any]] = {  # name: (full, smoke)
    "repeats": (7, 2),
    "target_ns": (30_000_000, 1_000_000),  # per repeat
    "append_sizes": ((1_000, 10_000, 100_000), (1_000, 10_000, 100_000)),
    "snapshot_sizes": ((10, 10_000), (10, 10_000)),
    "memory_n": (100_000, 10_000),
    "memory_snapshots": (1_000, 20),
}
SETTINGS = {mode: {k: v[i] for k, v in SIZES.items()} for i, mode in enumerate(("full", "smoke"))}


def message(i: int) -> dict[str, str]:
    """One chat message: a dict of two strings."""
    return {"user": f"user{i % 50}", "text": f"message number {i}"}


Loop = Callable[[int], int]  # runs k operations, returns elapsed ns
Reset = Callable[[], None] | None


def _timed(loop: Loop, k: int, reset: Reset, chunk: int, gc_on: bool) -> float:
    """ns per operation over k operations, run in chunks of at most ``chunk``
    with ``reset()`` (untimed) before each chunk."""
    if not gc_on:
        gc.disable()
    try:
        total = done = 0
        while done < k:
            step = min(chunk, k - done)
            if reset is not None:
                reset()
            total += loop(step)
            done += step
        return total / k
    finally:
        gc.enable()


def _calibrate(loop: Loop, reset: Reset, target_ns: float, chunk: int, gc_on: bool) -> int:
    one = min(_timed(loop, 1, reset, chunk, gc_on), _timed(loop, 1, reset, chunk, gc_on))
    return int(max(3, min(1_000_000, target_ns // max(one, 1.0))))


def _medians(cfg: dict[str, Any], chunk: int, gc_on: bool, *loops: tuple[Loop, Reset]) -> list[Any]:
    """Per loop (with its reset): median ns per operation, the samples, k; repeats interleaved."""
    gc.collect()  # once: a full collection of a large heap takes tens of ms
    ks = [_calibrate(loop, reset, cfg["target_ns"], chunk, gc_on) for loop, reset in loops]
    samples: list[list[float]] = [[] for _ in loops]
    for _ in range(cfg["repeats"]):
        for (loop, reset), k, s in zip(loops, ks, samples, strict=True):
            s.append(_timed(loop, k, reset, chunk, gc_on))
    return [(statistics.median(s), s, k) for s, k in zip(samples, ks, strict=True)]


def pair(
    ours: Loop,
    upstream: Loop,
    cfg: dict[str, Any],
    *,
    resets: tuple[Reset, Reset] = (None, None),
    chunk: int = 1_000_000,
) -> dict[str, Any]:
    """Median ns per operation of each library, repeats interleaved."""
    (o, o_s, o_k), (u, u_s, u_k) = _medians(cfg, chunk, True, (ours, resets[0]), (upstream, resets[1]))
    samples = {"ours_samples_ns": o_s, "upstream_samples_ns": u_s}
    return {"ours_ns": o, "upstream_ns": u, **samples, "k": [o_k, u_k], "gc": True}


def single(
    loop: Loop, cfg: dict[str, Any], *, reset: Reset = None, chunk: int = 1_000_000, gc_on: bool = True
) -> dict[str, Any]:
    ((ns, samples, k),) = _medians(cfg, chunk, gc_on, (loop, reset))
    return {"ns": ns, "samples_ns": samples, "k": k, "gc": gc_on}


# -- the benchmarks ---------------------------------------------------------------


def bench_read(cfg: dict[str, Any]) -> dict[str, Any]:
    """A read of a bound key (an int) in the script thread: binding included."""
    server_state["bench_r"] = 1
    with up_no_rerun:
        up_state["bench_r"] = 1

    def reads(state: Any) -> Loop:
        def loop(k: int, s: Any = state) -> int:
            t0 = perf()
            for _ in range(k):
                _ = s["bench_r"]
            return perf() - t0

        return loop

    return {"read": pair(reads(server_state), reads(up_state), cfg)}


def bench_increment(cfg: dict[str, Any]) -> dict[str, Any]:
    """ours ``update("c", fn)`` vs upstream ``with lock: s["c"] = s["c"] + 1``;
    and, for information, ours with upstream's classic code."""
    server_state["bench_c"] = 0
    server_state["bench_c2"] = 0
    with up_no_rerun:
        up_state["bench_c"] = 0

    def inc(n: int) -> int:
        return n + 1

    def ours(k: int) -> int:
        update = server_state.update
        t0 = perf()
        for _ in range(k):
            update("bench_c", inc)
        return perf() - t0

    def classic(state: Any, lock: Any, key: str, ctx: Any = NO_CONTEXT) -> Loop:
        def loop(k: int, s: Any = state, lock: Any = lock, key: str = key) -> int:
            with ctx:
                t0 = perf()
                for _ in range(k):
                    with lock[key]:
                        s[key] = s[key] + 1
                return perf() - t0

        return loop

    upstream = classic(up_state, up_lock, "bench_c", up_no_rerun)
    ours_classic = classic(server_state, server_state_lock, "bench_c2")
    out = {"increment": pair(ours, upstream, cfg)}
    out["increment_classic"] = pair(ours_classic, upstream, cfg)
    ours_count = server_state.peek("bench_c")
    out["increment"]["checked"] = ours_count > 0 and server_state.peek("bench_c2") > 0
    return out


def bench_append_classic(cfg: dict[str, Any], n: int) -> dict[str, Any]:
    """Append one message to a shared list of n messages, the classic way,
    ``with lock: s["m"] = s["m"] + [msg]``: upstream (in no_rerun) and ours
    with the same code (normal mode).

    The list is reset to n items (untimed) after at most n/20 appends, so n
    stays within 5 %."""
    chunk = max(1, n // 20)
    base = [message(i) for i in range(n)]

    def reset_up() -> None:
        with up_no_rerun:
            up_state["bench_m"] = list(base)

    def reset_ours() -> None:
        server_state["bench_m"] = base

    def classic(s: Any, lock: Any, ctx: Any = NO_CONTEXT) -> Loop:
        def loop(k: int, s: Any = s, lock: Any = lock) -> int:
            with ctx:
                t0 = perf()
                for i in range(k):
                    with lock["bench_m"]:
                        s["bench_m"] = s["bench_m"] + [{"user": "bench", "text": f"message {i}"}]
                return perf() - t0

        return loop

    ours, upstream = classic(server_state, server_state_lock), classic(up_state, up_lock, up_no_rerun)
    res = pair(ours, upstream, cfg, resets=(reset_ours, reset_up), chunk=chunk)
    assert len(server_state.peek("bench_m")) > n and len(up_state["bench_m"]) > n
    return {f"append_classic_{n}": {**res, "n": n}}


def bench_append_update(cfg: dict[str, Any], n: int) -> dict[str, Any]:
    """Ours only: ``update("mp", lambda v: v.append(pmap(msg)))`` on a pvector
    of n pmaps, with the GC on (as in an app) and off (the library's own
    cost). The upstream figure shown beside it in the table is its classic
    append, from the append_classic run. Reset as for the classic append."""
    chunk = max(1, n // 20)
    pbase = pvector(pmap(message(i)) for i in range(n))

    def reset() -> None:
        server_state["bench_mp"] = pbase

    def ours(k: int) -> int:
        update = server_state.update
        t0 = perf()
        for i in range(k):
            m = pmap({"user": "bench", "text": f"message {i}"})
            update("bench_mp", lambda v: v.append(m))  # noqa: B023 - called at once
        return perf() - t0

    res = single(ours, cfg, reset=reset, chunk=chunk, gc_on=True)
    res_off = single(ours, cfg, reset=reset, chunk=chunk, gc_on=False)
    # The stored value itself, not its read form (converting it is O(n)).
    assert len(server_state.snapshot().stored("bench_mp")) > n
    return {f"append_update_{n}": {**res, "n": n}, f"append_update_gcoff_{n}": {**res_off, "n": n}}


def bench_snapshot(cfg: dict[str, Any]) -> dict[str, Any]:
    """``server_state.snapshot()`` with 10 and with 10k keys in the store:
    repeated (no write in between), and right after a write of one key (only
    the snapshot timed, each call between two ``perf_counter_ns``: ~50 ns of
    timer included).
    For information, upstream's nearest equivalent: ``dict(server_state)``, a
    copy of every key (which binds the session to every key, and is not
    consistent under concurrent writes)."""
    out: dict[str, Any] = {}
    present = 0
    for size in cfg["snapshot_sizes"]:
        for i in range(present, size):
            server_state[f"bench_s{i}"] = i
        with up_no_rerun:
            for i in range(present, size):
                up_state[f"bench_s{i}"] = i
        present = size

        def ours(k: int) -> int:
            snap = server_state.snapshot
            t0 = perf()
            for _ in range(k):
                _ = snap()
            return perf() - t0

        def upstream(k: int) -> int:
            s = up_state
            t0 = perf()
            for _ in range(k):
                _ = dict(s)
            return perf() - t0

        def ours_after_write(k: int) -> int:
            s, snap = server_state, server_state.snapshot
            total = 0
            for i in range(k):
                s["bench_s0"] = -1 - i  # a real change (not timed)
                t0 = perf()
                _ = snap()
                total += perf() - t0
            return total

        res = pair(ours, upstream, cfg)
        out[f"snapshot_{size}"] = {**res, "ours_keys": len(server_state), "upstream_keys": len(up_state)}
        res = single(ours_after_write, cfg)
        out[f"snapshot_after_write_{size}"] = {**res, "ours_keys": len(server_state)}
    for i in range(present):
        del server_state[f"bench_s{i}"]
        del up_state[f"bench_s{i}"]
    return out


@contextlib.contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """From a collected heap, under tracemalloc: ``since()``, the bytes allocated since
    (one copy: ``with traced() as since: value = make(); one = since()``). The GC on again after."""
    gc.collect()
    tracemalloc.start()
    try:
        b0 = tracemalloc.get_traced_memory()[0]
        yield lambda: tracemalloc.get_traced_memory()[0] - b0
    finally:
        gc.enable()
        tracemalloc.stop()


def bench_memory_ours(cfg: dict[str, Any]) -> dict[str, Any]:
    """Bytes (tracemalloc): one copy of an n-item pvector of pmaps, vs that
    value stored and appended to ``count`` times with ``update``, a snapshot
    kept after every append: everything still alive at the end (stored value,
    snapshots, appended messages) counts. The GC is off during that loop
    (tracing is slow enough; no cycles are made, so what stays alive is the
    same).

    Then the same loop again, untraced and with the GC on, timed: the cost of
    an append while the snapshots are held (information, no target)."""
    n, count = cfg["memory_n"], cfg["memory_snapshots"]

    def append(i: int) -> Any:  # one append; the snapshot after it
        m = pmap(message(n + i))
        server_state.update("bench_mem", lambda v: v.append(m))
        return server_state.snapshot()

    with traced() as since:
        value = pvector(pmap(message(i)) for i in range(n))
        one = since()
        server_state["bench_mem"] = value
        del value
        gc.disable()
        snaps = [append(i) for i in range(count)]
        gc.enable()
        gc.collect()
        total = since()
    assert len(server_state.snapshot().stored("bench_mem")) == n + count
    assert len(snaps) == count
    del snaps

    server_state["bench_mem"] = pvector(pmap(message(i)) for i in range(n))
    gc.collect()
    t0 = perf()
    snaps = [append(i) for i in range(count)]
    per_append = (perf() - t0) / count
    del snaps
    del server_state["bench_mem"]
    memory = {"one_copy_bytes": one, "total_bytes": total, "ratio": total / one, "n": n, "snapshots": count}
    held = {"ours_ns": per_append, "n": n, "snapshots": count, "gc": True}
    return {"memory_ours": memory, "append_snapshots_held": held}


def bench_memory_upstream(cfg: dict[str, Any]) -> dict[str, Any]:
    """The same with upstream and the classic append (in no_rerun): one copy
    of an n-item list of dicts (tracemalloc), vs the stored list after
    ``count`` appends with a reference to the value kept after every append
    (upstream has no snapshot; the classic append replaces the list, so a
    reference is what a snapshot of it costs there).

    Counted without tracemalloc, which would make each of upstream's ``repr``
    hashes of the whole list several times slower: ``sys.getsizeof`` of
    every distinct list kept (its pointer array; the messages are shared),
    of the appended messages (dict and two strings each) and of the hash
    upstream keeps (the repr string of the last value). GC off in the loop."""
    n, count = cfg["memory_n"], cfg["memory_snapshots"]
    with traced() as since:
        value = [message(i) for i in range(n)]
        one = since()
    with up_no_rerun:
        up_state["bench_mem"] = value
    del value
    snaps: list[list[dict[str, str]]] = []
    gc.disable()
    t0 = perf()
    try:
        with up_no_rerun:
            for i in range(count):
                m = message(n + i)
                with up_lock["bench_mem"]:
                    up_state["bench_mem"] = up_state["bench_mem"] + [m]
                snaps.append(up_state["bench_mem"])
    finally:
        gc.enable()
    per_append = (perf() - t0) / count
    final = up_state["bench_mem"]
    assert len(final) == n + count
    kept = {id(v): v for v in snaps}
    added = sum(sys.getsizeof(v) for v in kept.values())
    added += sum(sys.getsizeof(m) + sys.getsizeof(m["user"]) + sys.getsizeof(m["text"]) for m in final[n:])
    value_hash = up_state._ensure_item("bench_mem")._value_hash  # upstream keeps (repr, None)
    added += sys.getsizeof(value_hash[0]) if value_hash else 0
    del snaps, kept, final
    del up_state["bench_mem"]
    total = one + added
    memory = {"one_copy_bytes": one, "total_bytes": total, "ratio": total / one, "n": n, "snapshots": count}
    return {"memory_upstream": {**memory, "append_ns_gc_off": per_append}}


BENCHMARKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "snapshot": bench_snapshot,
    "read": bench_read,
    "increment": bench_increment,
    **{
        f"append_{kind}_{n}": functools.partial(f, n=n)
        for kind, f in (("classic", bench_append_classic), ("update", bench_append_update))
        for n in (1_000, 10_000, 100_000)
    },
    "memory_ours": bench_memory_ours,
    "memory_upstream": bench_memory_upstream,
}


_file_lock = threading.Lock()


def save(results: dict[str, Any]) -> None:
    out = os.environ.get("SERVER_STATE_BENCH_OUT")
    if not out:
        return
    path = Path(out)
    with _file_lock:
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update(results)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)


# -- the page ---------------------------------------------------------------------

mode = st.query_params.get("mode", "full")
cfg = SETTINGS[mode]
st.session_state.setdefault("seq", 0)
st.session_state.setdefault("finished", [])
clicked = [name for name in BENCHMARKS if st.button(f"run {name}")]
for name in clicked:
    st.session_state.seq += 1
    seq = st.session_state.seq
    started = time.perf_counter()
    try:
        results = BENCHMARKS[name](cfg)
    except Exception as exc:  # reported to the client, which fails the run
        save({f"error_{name}": traceback.format_exc()})
        st.session_state.finished.append(f"failed {name} {seq}: {type(exc).__name__}: {exc}")
    else:
        for res in results.values():
            res["run_seconds"] = time.perf_counter() - started
            res["mode"] = mode
        save(results)
        st.session_state.finished.append(f"done {name} {seq}")
for line in st.session_state.finished:
    st.markdown(line)
