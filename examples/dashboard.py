"""A dashboard fed by a background thread, no session involved.

Try: open two tabs. One worker thread per server process writes fake metrics
every DASHBOARD_PERIOD seconds (default 1.0); both tabs rerun on each tick
without anyone touching them. Open a third tab: still one worker.

Keys (all written by the worker):
    "ticks"    int, how many ticks so far.
    "latest"   dict of the last tick's metrics: {"cpu": float, "memory": float, "requests": int}.
    "history"  pvector of the last 50 "cpu" values, oldest first.
"""

import os
import random
import threading

import streamlit as st
from pyrsistent import pvector

from server_state import server_state

PERIOD = float(os.environ.get("DASHBOARD_PERIOD", "1.0"))
HISTORY = 50


class Worker:
    """The ticking thread plus the event that stops it."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.stopped = threading.Event()
        # A daemon: it must not keep the server process alive on shutdown.
        self.thread = threading.Thread(target=self._run, name="dashboard-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        cpu = 50.0
        while not self.stopped.wait(self.period):
            cpu = round(min(100.0, max(0.0, cpu + random.uniform(-5, 5))), 1)
            self._tick(cpu)

    @staticmethod
    def _tick(cpu: float) -> None:
        server_state["latest"] = {
            "cpu": cpu,
            "memory": round(random.uniform(30, 70), 1),
            "requests": random.randint(0, 500),
        }
        # The stored pvector is handed to fn as is: append is O(log n), and
        # slicing a pvector gives a pvector, so no copy to a list on every tick.
        server_state.update("history", lambda v: v.append(cpu)[-HISTORY:], default=pvector())
        server_state.update("ticks", lambda n: n + 1, default=0)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


# cache_resource runs this once per server process, whichever session gets here
# first: a module-level flag would not do, the script is re-executed on every run.
# Clearing the cache (st.cache_resource.clear(), the "Clear cache" menu) stops it.
@st.cache_resource(on_release=Worker.stop)
def worker() -> Worker:
    return Worker(PERIOD)


worker()

st.title("Dashboard")

ticks = server_state.get("ticks", 0)
latest = server_state.get("latest")
history = server_state.get("history", [])  # read as a plain read-only list

if latest is None:
    st.info("Waiting for the first tick…")
else:
    tick_col, cpu_col, mem_col, req_col = st.columns(4)
    tick_col.metric("Ticks", ticks)
    cpu_delta = round(history[-1] - history[-2], 1) if len(history) >= 2 else None
    cpu_col.metric("CPU %", latest["cpu"], delta=cpu_delta)
    mem_col.metric("Memory %", latest["memory"])
    req_col.metric("Requests/s", latest["requests"])
    st.caption(f"CPU %, last {HISTORY} ticks")
    st.line_chart(history)
