"""The seed README's global counter, for the cross-session benchmarks
(propagation, fan-out, unbound sessions). One app for both libraries:
``$SERVER_STATE_BENCH_LIB`` is ``ours`` (server_state) or ``upstream``
(streamlit_server_state 0.20.2); the code below is the same for both, only
the import differs, as the migration guide promises.

Query parameters:
- ``key``: the state key (each benchmark its own, so sessions bound by an
  earlier benchmark on the same server never rerun for a later one);
- ``show=none``: this session never reads the key (the "unbound" sessions).

"Increment" is the seed's locked read-modify-write. "Set" writes a new value
without reading the key (``time.time_ns()``), for the unbound benchmark's
writer, which must not be bound itself.
"""

import os
import time

import streamlit as st

if os.environ.get("SERVER_STATE_BENCH_LIB") == "upstream":
    from streamlit_server_state import server_state, server_state_lock
else:
    from server_state import server_state, server_state_lock

key = st.query_params.get("key", "count")
show = st.query_params.get("show", "count") != "none"

if show:
    with server_state_lock[key]:
        if key not in server_state:
            server_state[key] = 0

if st.button("Increment"):
    with server_state_lock[key]:
        server_state[key] = server_state[key] + 1

if st.button("Set"):
    server_state[key] = time.time_ns()

if show:
    st.markdown(f"count={server_state[key]}")
