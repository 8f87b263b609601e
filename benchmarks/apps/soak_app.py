"""The soak's app (benchmarks/soak.py). One page, three roles, chosen by the
query string:

- ``role=reader&key=K`` (the many sessions): reads ``server_state.get(K)``
  and shows ``value=<v>``; bound to ``K``.
- ``role=probe``: reads no key; shows the library's own counters
  (``stats()``, ``bound_sessions()``, ``version()``), so the soak observes the
  tracker from outside, as a page of the app would. Rerun by the soak to poll.
- ``role=control``: a "Start writer" button that starts, once per server (a
  ``cache_resource``), a background thread writing ``server_state["live"] =
  1, 2, ...`` at ``rate`` writes/s for ``duration`` seconds; then it writes
  ``writer_done``, which this page reads, so its end reruns the control page.

``shared`` is set once, when the first session runs, and never written again.
Uses only what Streamlit 1.37 has.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

import streamlit as st

from server_state import server_state


@st.cache_resource
def init_shared() -> bool:
    """The key phase 1 reads: written once per server, never again."""
    server_state["shared"] = "hello"
    return True


class Writer:
    """A background thread (no session attached) writing "live" at a fixed rate."""

    def __init__(self, rate: float, duration: float) -> None:
        self.rate = rate
        self.duration = duration
        self.writes = 0
        self.errors = 0
        self.last_value = 0
        self.first_at = 0.0
        self.last_at = 0.0  # time.monotonic() of the last write (CLOCK_MONOTONIC: same clock as the soak)
        self.done = False
        self.thread = threading.Thread(target=self._run, name="soak-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        total = max(1, round(self.rate * self.duration))
        pace = threading.Event()  # never set: its wait() paces the writes
        start = time.monotonic()
        for i in range(1, total + 1):
            delay = start + (i - 1) / self.rate - time.monotonic()
            if delay > 0:
                pace.wait(delay)
            try:
                server_state["live"] = i
                self.writes += 1
                self.last_value = i
                self.last_at = time.monotonic()
                if i == 1:
                    self.first_at = self.last_at
            except Exception:
                self.errors += 1
                traceback.print_exc()  # into the server log, where the soak looks for it
        self.done = True
        server_state["writer_done"] = {
            "writes": self.writes,
            "last": self.last_value,
            "errors": self.errors,
        }


@st.cache_resource
def start_writer(rate: float, duration: float) -> Writer:
    return Writer(rate, duration)


init_shared()
params = st.query_params
role = params.get("role", "reader")

if role == "reader":
    st.markdown(f"value={server_state.get(params.get('key', 'shared'))}")
elif role == "probe":
    stats = server_state.stats()
    st.markdown(
        f"sessions={stats['sessions']} bound_shared={server_state.bound_sessions('shared')} "
        f"bound_live={server_state.bound_sessions('live')} version_shared={server_state.version('shared')} "
        f"reruns={stats['reruns_requested']} loops={stats['loops_stopped']}"
    )
    # Information only, from a private counter (parked = disconnected, kept for a
    # reconnect until Streamlit's disconnected-session TTL); -1 if it is gone.
    sizes: Any = getattr(getattr(server_state, "_tracker", None), "sizes", None)
    parked = sizes().get("parked", -1) if callable(sizes) else -1
    st.markdown(f"parked={parked}")
elif role == "control":
    rate = float(params.get("rate", "20"))
    duration = float(params.get("duration", "120"))
    done = server_state.get("writer_done")  # binds: the writer's end reruns this page
    stats = server_state.stats()
    st.markdown(f"reruns={stats['reruns_requested']} loops={stats['loops_stopped']}")
    if st.button("Start writer"):
        start_writer(rate, duration)
    if done is not None:
        w = start_writer(rate, duration)
        st.markdown(
            f"writer=done writes={w.writes} last={w.last_value} errors={w.errors} "
            f"first_at={w.first_at:.6f} last_at={w.last_at:.6f}"
        )
